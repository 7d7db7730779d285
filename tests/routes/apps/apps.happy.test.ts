import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  appRow,
  type Cast,
  castFor,
  createAppFor,
  freshAppName,
  type Harness,
  startHarness,
} from "../../support/management.ts";

let h: Harness;
let cast: Cast;
const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

beforeAll(async () => {
  h = await startHarness();
  cast = await castFor(h);
});
afterAll(() => h?.close());

const apps = () => `/v1/${cast.projectId}/apps`;

describe("apps: the original's scenarios", () => {
  it("lists apps (none yet in a fresh project)", async () => {
    const fresh = await castFor(h);
    const response = await h.call("GET", `/v1/${fresh.projectId}/apps`, { token: fresh.reader });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    expect(response.body).toEqual({
      apps: [],
      message: "Successfully listed applications",
      next_marker: null,
      next: null,
    });
  });

  it("creates an app with the CLI's exact body and answers 200 with {name}-{project_id}", async () => {
    const name = freshAppName();
    const response = await h.call("POST", apps(), {
      token: cast.member,
      body: { app: { name, config: {} } },
    });
    expect(response.status).toBe(200);
    expect(response.body.message).toBe("App successfully created");
    const app = response.body.app;
    expect(Object.keys(app)).toEqual([
      "id",
      "name",
      "project_id",
      "description",
      "config",
      "created_at",
      "updated_at",
    ]);
    expect(app).toMatchObject({
      name: `${name}-${cast.projectId}`,
      project_id: cast.projectId,
      description: `App for project ${cast.projectId}`,
      config: {},
    });
    expect(app.id).toMatch(/^[0-9a-f]{32}$/);
    expect(app.created_at).toMatch(iso);
    expect(app.updated_at).toBe(app.created_at);

    // MySQL and the engine agree; the engine's name is Picasso's own, never the tenant's.
    const row = await appRow(h, app.name);
    expect(row?.engineName).toMatch(/^pc-[0-9a-f]{27}$/);
    expect(h.fake.apps().find((engineApp) => engineApp.name === row?.engineName)?.config ?? {}).toEqual({});
  });

  it("shows an app by the returned name, from MySQL without calling the engine", async () => {
    const name = await createAppFor(h, cast);
    h.fake.clearRequests();
    const response = await h.call("GET", `${apps()}/${name}`, { token: cast.reader });
    expect(response.status).toBe(200);
    expect(response.body.message).toBe("Successfully loaded app");
    expect(response.body.app.name).toBe(name);
    const list = await h.call("GET", apps(), { token: cast.reader });
    expect(list.body.apps.map((app: { name: string }) => app.name)).toContain(name);
    expect(h.fake.requests).toEqual([]);
  });

  it("updates config with the CLI's flat PUT body", async () => {
    const name = await createAppFor(h, cast);
    const before = await h.call("GET", `${apps()}/${name}`, { token: cast.reader });
    const response = await h.call("PUT", `${apps()}/${name}`, {
      token: cast.member,
      body: { config: { GREETING: "hello", TARGET: "world" } },
    });
    expect(response.status).toBe(200);
    expect(response.body.message).toBe("App successfully updated");
    expect(response.body.app.config).toEqual({ GREETING: "hello", TARGET: "world" });
    expect(response.body.app.updated_at >= before.body.app.updated_at).toBe(true);
    expect(response.body.app.created_at).toBe(before.body.app.created_at);
    const row = await appRow(h, name);
    expect(row?.config).toEqual({ GREETING: "hello", TARGET: "world" });
    expect(h.fake.apps().find((app) => app.name === row?.engineName)?.config).toEqual({
      GREETING: "hello",
      TARGET: "world",
    });
  });

  it("deletes an app with 200 and a JSON message, on both sides", async () => {
    const name = await createAppFor(h, cast);
    const engineName = (await appRow(h, name))?.engineName;
    const response = await h.call("DELETE", `${apps()}/${name}`, { token: cast.member });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    expect(response.body).toEqual({ message: "App successfully deleted" });
    expect(await appRow(h, name)).toBeUndefined();
    expect(h.fake.apps().some((app) => app.name === engineName)).toBe(false);
    expect((await h.call("GET", `${apps()}/${name}`, { token: cast.reader })).status).toBe(404);
  });
});

describe("apps: PUT and PATCH", () => {
  it("PUT replaces config wholesale and accepts a wrapped body", async () => {
    const name = await createAppFor(h, cast);
    await h.call("PUT", `${apps()}/${name}`, { token: cast.member, body: { config: { A: "1", B: "2" } } });
    const response = await h.call("PUT", `${apps()}/${name}`, {
      token: cast.member,
      body: { app: { config: { C: "3" }, description: "replaced" } },
    });
    expect(response.status).toBe(200);
    expect(response.body.app).toMatchObject({ config: { C: "3" }, description: "replaced" });
    const engineName = (await appRow(h, name))?.engineName;
    expect(h.fake.apps().find((app) => app.name === engineName)?.config).toEqual({ C: "3" });
  });

  it("PATCH merges config, null deletes a key, other fields stay", async () => {
    const name = await createAppFor(h, cast);
    await h.call("PUT", `${apps()}/${name}`, {
      token: cast.member,
      body: { config: { A: "1", B: "2" }, description: "kept" },
    });
    const response = await h.call("PATCH", `${apps()}/${name}`, {
      token: cast.member,
      body: { config: { B: null, C: "3" } },
    });
    expect(response.status).toBe(200);
    expect(response.body.app).toMatchObject({ config: { A: "1", C: "3" }, description: "kept" });
    const engineName = (await appRow(h, name))?.engineName;
    expect(h.fake.apps().find((app) => app.name === engineName)?.config).toEqual({ A: "1", C: "3" });

    const wrapped = await h.call("PATCH", `${apps()}/${name}`, {
      token: cast.member,
      body: { app: { config: { A: null } } },
    });
    expect(wrapped.body.app.config).toEqual({ C: "3" });
  });

  it("accepts the app's own name in an update body, and an empty update changes nothing", async () => {
    const name = await createAppFor(h, cast);
    const same = await h.call("PUT", `${apps()}/${name}`, { token: cast.member, body: { name } });
    expect(same.status).toBe(200);
    h.fake.clearRequests();
    const empty = await h.call("PATCH", `${apps()}/${name}`, { token: cast.member, body: {} });
    expect(empty.status).toBe(200);
    expect(empty.body.app.updated_at).toBe(same.body.app.updated_at);
    expect(h.fake.requests).toEqual([]);
  });

  it("changes only the description without calling the engine", async () => {
    const name = await createAppFor(h, cast);
    h.fake.clearRequests();
    const response = await h.call("PATCH", `${apps()}/${name}`, {
      token: cast.member,
      body: { description: "Une description, ünïcødé" },
    });
    expect(response.status).toBe(200);
    expect(response.body.app.description).toBe("Une description, ünïcødé");
    expect(h.fake.requests).toEqual([]);
  });

  it("creates with a description and config given", async () => {
    const response = await h.call("POST", apps(), {
      token: cast.member,
      body: { name: freshAppName(), description: "bare body", config: { K: "v" } },
    });
    expect(response.status).toBe(200);
    expect(response.body.app).toMatchObject({ description: "bare body", config: { K: "v" } });
  });
});

describe("apps: pagination", () => {
  it("pages by name with limit and marker, with a next link", async () => {
    const own = await castFor(h);
    const names: string[] = [];
    for (const name of ["e", "a", "c", "b", "d"]) names.push(await createAppFor(h, own, `page-${name}`));
    const sorted = [...names].sort();
    const base = `/v1/${own.projectId}/apps`;

    const first = await h.call("GET", `${base}?limit=2`, { token: own.reader });
    expect(first.body.apps.map((app: { name: string }) => app.name)).toEqual(sorted.slice(0, 2));
    expect(first.body.next_marker).toBe(sorted[1]);
    expect(first.body.next).toBe(`http://picasso.test${base}?limit=2&marker=${sorted[1]}`);

    const second = await h.call("GET", first.body.next.replace("http://picasso.test", ""), {
      token: own.reader,
    });
    expect(second.body.apps.map((app: { name: string }) => app.name)).toEqual(sorted.slice(2, 4));

    const last = await h.call("GET", `${base}?limit=2&marker=${second.body.next_marker}`, {
      token: own.reader,
    });
    expect(last.body.apps.map((app: { name: string }) => app.name)).toEqual(sorted.slice(4));
    expect(last.body.next_marker).toBeNull();
    expect(last.body.next).toBeNull();

    const all = await h.call("GET", `${base}?limit=5000`, { token: own.reader });
    expect(all.status).toBe(200);
    expect(all.body.apps).toHaveLength(5);
  });

  it("builds links from the configured public URL", async () => {
    const behindProxy = await startHarness({ services: { publicUrl: "https://faas.example.org" } });
    try {
      const own = await castFor(behindProxy);
      await createAppFor(behindProxy, own);
      await createAppFor(behindProxy, own);
      const page = await behindProxy.call("GET", `/v1/${own.projectId}/apps?limit=1`, { token: own.reader });
      expect(page.body.next).toMatch(/^https:\/\/faas\.example\.org\/v1\//);
    } finally {
      await behindProxy.close();
    }
  });
});

describe("apps: an admin", () => {
  it("may act on any project", async () => {
    const name = await createAppFor(h, cast);
    const token = h.keystone.token;
    expect((await h.call("GET", `${apps()}/${name}`, { token })).status).toBe(200);
    const updated = await h.call("PATCH", `${apps()}/${name}`, { token, body: { config: { BY: "admin" } } });
    expect(updated.status).toBe(200);
    expect((await h.call("DELETE", `${apps()}/${name}`, { token })).status).toBe(200);
  });
});
