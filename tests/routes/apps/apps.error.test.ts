import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  appRow,
  type Cast,
  castFor,
  createAppFor,
  createRouteFor,
  freshAppName,
  type Harness,
  startHarness,
} from "../../support/management.ts";

let h: Harness;
let cast: Cast;

beforeAll(async () => {
  h = await startHarness();
  cast = await castFor(h);
});
afterAll(() => h?.close());

const apps = () => `/v1/${cast.projectId}/apps`;

/** Every refused create must leave MySQL and the engine untouched. */
async function expectNothingCreated(name: string) {
  expect(await appRow(h, `${name}-${cast.projectId}`)).toBeUndefined();
}

describe("apps: invalid input is refused with 400 naming the field", () => {
  const cases: [string, unknown, RegExp][] = [
    ["missing name", { app: { config: {} } }, /name/],
    ["upper case", { app: { name: "Hello" } }, /name: must match \^\[a-z0-9_-\]\+\$/],
    ["spaces", { app: { name: "a b" } }, /name/],
    ["SQL metacharacters", { app: { name: "x'; DROP TABLE apps; --" } }, /name/],
    ["unicode", { app: { name: "héllo" } }, /name/],
    ["path traversal", { app: { name: "../etc" } }, /name/],
    ["too long", { app: { name: "a".repeat(65) } }, /name: must be at most 64/],
    ["empty", { app: { name: "" } }, /name/],
    ["not a string", { app: { name: 42 } }, /name: must be a string/],
    ["config not an object", { app: { name: "ok", config: "x" } }, /config/],
    ["config value not a string", { app: { name: "ok", config: { A: 1 } } }, /config\.A/],
    ["config value empty", { app: { name: "ok", config: { A: "" } } }, /config\.A: must not be empty/],
    ["config key invalid", { app: { name: "ok", config: { "BAD-KEY": "v" } } }, /config\.BAD-KEY/],
    ["config key starting with a digit", { app: { name: "ok", config: { "1A": "v" } } }, /config\.1A/],
    ["unknown field", { app: { name: "ok", colour: "blue" } }, /colour/],
    ["description too long", { app: { name: "ok", description: "x".repeat(1025) } }, /description/],
    ["a JSON array", [], /json/],
  ];
  for (const [label, body, message] of cases) {
    it(`create: ${label}`, async () => {
      h.fake.clearRequests();
      const response = await h.call("POST", apps(), { token: cast.member, body });
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe("validation_failed");
      expect(response.body.error.message).toMatch(message);
      expect(h.fake.requests).toEqual([]);
    });
  }

  it("create: too many config keys", async () => {
    const config = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`K${i}`, "v"]));
    const response = await h.call("POST", apps(), {
      token: cast.member,
      body: { app: { name: "many", config } },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(/config: at most 64 keys/);
    await expectNothingCreated("many");
  });

  it("update: a different name, a bad config value, an unknown field", async () => {
    const name = await createAppFor(h, cast);
    for (const [method, body, message] of [
      ["PUT", { name: "other" }, /name: cannot change/],
      ["PATCH", { app: { name: "other" } }, /name: cannot change/],
      ["PUT", { config: { A: null } }, /config\.A/],
      ["PATCH", { config: { A: 5 } }, /config\.A/],
      ["PUT", { jwt_key: "x" }, /jwt_key/],
    ] as const) {
      const response = await h.call(method, `${apps()}/${name}`, { token: cast.member, body });
      expect(response.status, `${method} ${JSON.stringify(body)}`).toBe(400);
      expect(response.body.error.message).toMatch(message);
    }
    expect((await appRow(h, name))?.config).toEqual({});
  });

  it("update: a merge that would exceed the config limits", async () => {
    const name = await createAppFor(h, cast);
    const half = (from: number) =>
      Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`K${from + i}`, "v"]));
    expect(
      (await h.call("PATCH", `${apps()}/${name}`, { token: cast.member, body: { config: half(0) } })).status,
    ).toBe(200);
    const response = await h.call("PATCH", `${apps()}/${name}`, {
      token: cast.member,
      body: { config: half(40) },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(/config: at most 64 keys/);
    expect(Object.keys((await appRow(h, name))?.config ?? {})).toHaveLength(40);
  });

  it("refuses malformed names in the URL", async () => {
    for (const bad of ["x'%20OR%201=1", "%C3%A9", "a.b", "a%2Fb"]) {
      const response = await h.call("GET", `${apps()}/${bad}`, { token: cast.reader });
      expect(response.status, bad).toBe(400);
      expect(response.body.error.message).toMatch(/app: must match/);
    }
  });

  it("refuses a bad page size", async () => {
    for (const query of ["limit=0", "limit=-1", "limit=abc", "limit=1.5"]) {
      const response = await h.call("GET", `${apps()}?${query}`, { token: cast.reader });
      expect(response.status, query).toBe(400);
      expect(response.body.error.message).toMatch(/limit/);
    }
  });

  it("refuses a marker no name can be (non-ASCII) with 400, not 500", async () => {
    for (const marker of ["%C3%A9", "%F0%9F%98%80", "a%0Ab"]) {
      const response = await h.call("GET", `${apps()}?marker=${marker}`, { token: cast.reader });
      expect(response.status, marker).toBe(400);
      expect(response.body.error.message).toMatch(/marker: must be printable ASCII/);
    }
  });
});

describe("apps: bodies that are not JSON", () => {
  it("answers 415 to another content type, and to a body without one", async () => {
    const name = freshAppName();
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", null]) {
      const response = await h.call("POST", apps(), {
        token: cast.member,
        rawBody: JSON.stringify({ app: { name } }),
        contentType,
      });
      expect(response.status, String(contentType)).toBe(415);
      expect(response.body.error.code).toBe("unsupported_media_type");
    }
    await expectNothingCreated(name);
  });

  it("answers 400 to malformed JSON, and to no body at all", async () => {
    for (const rawBody of ['{"app": {"name": ', "", "nul"]) {
      const response = await h.call("POST", apps(), { token: cast.member, rawBody });
      expect(response.status, rawBody).toBe(400);
      expect(response.body.error.code).toMatch(/malformed_json|validation_failed/);
    }
    const name = await createAppFor(h, cast);
    const put = await h.call("PUT", `${apps()}/${name}`, { token: cast.member, rawBody: "{not json" });
    expect(put.status).toBe(400);
    expect(put.body.error).toEqual({ message: "Malformed JSON in request body", code: "malformed_json" });
  });

  it("answers 413 to a huge body", async () => {
    const response = await h.call("POST", apps(), {
      token: cast.member,
      body: { app: { name: "huge", description: "x".repeat(300_000) } },
    });
    expect(response.status).toBe(413);
    expect(response.body.error.code).toBe("payload_too_large");
    await expectNothingCreated("huge");
  });
});

describe("apps: the original's error scenarios", () => {
  it("shows an unknown app: 404", async () => {
    const response = await h.call("GET", `${apps()}/nope-${cast.projectId}`, { token: cast.reader });
    expect(response.status).toBe(404);
    expect(response.body).toEqual({
      error: { message: `App nope-${cast.projectId} not found`, code: "not_found" },
    });
  });

  it("deletes and updates an unknown app: 404", async () => {
    expect((await h.call("DELETE", `${apps()}/nope`, { token: cast.member })).status).toBe(404);
    expect((await h.call("PUT", `${apps()}/nope`, { token: cast.member, body: { config: {} } })).status).toBe(
      404,
    );
    expect((await h.call("PATCH", `${apps()}/nope`, { token: cast.member, body: {} })).status).toBe(404);
  });

  it("creates the same app twice: 409, one app", async () => {
    const name = freshAppName();
    await createAppFor(h, cast, name);
    const again = await h.call("POST", apps(), { token: cast.member, body: { app: { name, config: {} } } });
    expect(again.status).toBe(409);
    expect(again.body.error).toEqual({
      message: `App ${name}-${cast.projectId} already exists`,
      code: "conflict",
    });
  });

  it("refuses to delete an app with routes: 403, nothing deleted", async () => {
    const name = await createAppFor(h, cast);
    await createRouteFor(h, cast, name, { path: "/keep" });
    const response = await h.call("DELETE", `${apps()}/${name}`, { token: cast.member });
    expect(response.status).toBe(403);
    expect(response.body.error.message).toBe(`Unable to delete app ${name} with routes`);
    const row = await appRow(h, name);
    expect(row).toBeDefined();
    expect(h.fake.routes(row?.engineName ?? "").map((r) => r.path)).toEqual(["/keep"]);
  });
});

describe("apps: simultaneous creates", () => {
  it("lets exactly one of ten identical creates win; the rest get 409", async () => {
    const name = freshAppName();
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        h.call("POST", apps(), { token: cast.member, body: { app: { name, config: {} } } }),
      ),
    );
    const statuses = responses.map((response) => response.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    const row = await appRow(h, `${name}-${cast.projectId}`);
    expect(h.fake.apps().filter((app) => app.name === row?.engineName)).toHaveLength(1);
  });
});

describe("apps: the engine failing leaves MySQL and the engine as they were", () => {
  const engineAppsNow = () => h.fake.apps().map((app) => app.name);

  it("create while the engine is stopped: 503, no row, nothing on the engine", async () => {
    const name = freshAppName();
    const before = engineAppsNow();
    await h.fake.stop();
    try {
      const response = await h.call("POST", apps(), { token: cast.member, body: { app: { name } } });
      expect(response.status).toBe(503);
      expect(response.body.error.code).toBe("service_unavailable");
      expect(response.body.error.message).toMatch(/Function engine unavailable/);
    } finally {
      await h.fake.restart();
    }
    await expectNothingCreated(name);
    expect(engineAppsNow()).toEqual(before);
    // And the same create works once the engine is back.
    expect((await h.call("POST", apps(), { token: cast.member, body: { app: { name } } })).status).toBe(200);
  });

  it("create refused by the engine: 502 with the engine's message, no row", async () => {
    const name = freshAppName();
    h.fake.setFault({ kind: "status", status: 500, message: "disk full" });
    try {
      const response = await h.call("POST", apps(), { token: cast.member, body: { app: { name } } });
      expect(response.status).toBe(502);
      expect(response.body.error).toEqual({
        message: "Function engine error: disk full",
        code: "engine_error",
      });
    } finally {
      h.fake.setFault(null);
    }
    await expectNothingCreated(name);
  });

  it("create with the engine hanging: 504, no row, nothing on the engine", async () => {
    const name = freshAppName();
    const before = engineAppsNow();
    h.fake.setFault({ kind: "hang", scope: "v1" });
    try {
      const response = await h.call("POST", apps(), { token: cast.member, body: { app: { name } } });
      expect(response.status).toBe(504);
      expect(response.body.error.code).toBe("gateway_timeout");
    } finally {
      h.fake.setFault(null);
    }
    await expectNothingCreated(name);
    expect(engineAppsNow()).toEqual(before);
  });

  it("update while the engine is stopped: 503, config unchanged on both sides", async () => {
    const name = await createAppFor(h, cast);
    await h.call("PUT", `${apps()}/${name}`, { token: cast.member, body: { config: { A: "1" } } });
    const engineName = (await appRow(h, name))?.engineName;
    await h.fake.stop();
    try {
      const response = await h.call("PUT", `${apps()}/${name}`, {
        token: cast.member,
        body: { config: { A: "2" } },
      });
      expect(response.status).toBe(503);
    } finally {
      await h.fake.restart();
    }
    expect((await appRow(h, name))?.config).toEqual({ A: "1" });
    expect(h.fake.apps().find((app) => app.name === engineName)?.config).toEqual({ A: "1" });
  });

  it("update refused by the engine: 502, MySQL rolled back", async () => {
    const name = await createAppFor(h, cast);
    h.fake.setFault({ kind: "status", status: 503, message: "busy" });
    try {
      const response = await h.call("PATCH", `${apps()}/${name}`, {
        token: cast.member,
        body: { config: { A: "1" } },
      });
      expect(response.status).toBe(502);
      expect(response.body.error.message).toBe("Function engine error: busy");
    } finally {
      h.fake.setFault(null);
    }
    expect((await appRow(h, name))?.config).toEqual({});
  });

  it("delete while the engine is stopped: 503, the app stays on both sides", async () => {
    const name = await createAppFor(h, cast);
    const engineName = (await appRow(h, name))?.engineName;
    await h.fake.stop();
    try {
      const response = await h.call("DELETE", `${apps()}/${name}`, { token: cast.member });
      expect(response.status).toBe(503);
    } finally {
      await h.fake.restart();
    }
    expect(await appRow(h, name)).toBeDefined();
    expect(engineAppsNow()).toContain(engineName);
    expect((await h.call("DELETE", `${apps()}/${name}`, { token: cast.member })).status).toBe(200);
  });

  it("update of an app the engine lost: 200, recreated there as MySQL has it", async () => {
    const name = await createAppFor(h, cast);
    const engineName = (await appRow(h, name))?.engineName;
    await fetch(`${h.fake.apiUrl}/apps/${engineName}`, { method: "DELETE" });
    const response = await h.call("PATCH", `${apps()}/${name}`, {
      token: cast.member,
      body: { config: { A: "1" } },
    });
    expect(response.status).toBe(200);
    expect(h.fake.apps().find((app) => app.name === engineName)?.config).toEqual({ A: "1" });
  });

  it("delete of an app the engine lost already: 200, gone from MySQL", async () => {
    const name = await createAppFor(h, cast);
    const engineName = (await appRow(h, name))?.engineName;
    await fetch(`${h.fake.apiUrl}/apps/${engineName}`, { method: "DELETE" });
    const response = await h.call("DELETE", `${apps()}/${name}`, { token: cast.member });
    expect(response.status).toBe(200);
    expect(await appRow(h, name)).toBeUndefined();
  });
});
