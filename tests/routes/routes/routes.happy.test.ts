import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  appRow,
  type Cast,
  castFor,
  createAppFor,
  createRouteFor,
  type Harness,
  routeRows,
  startHarness,
} from "../../support/management.ts";

let h: Harness;
let cast: Cast;

beforeAll(async () => {
  h = await startHarness();
  cast = await castFor(h);
});
afterAll(() => h?.close());

const routesOf = (app: string) => `/v1/${cast.projectId}/apps/${app}/routes`;
const engineRoutesOf = async (app: string) => h.fake.routes((await appRow(h, app))?.engineName ?? "");

describe("routes: the original's scenarios with the CLI's exact bodies", () => {
  it("creates a route as `openstack fn routes create` sends it (is_public as a string)", async () => {
    const app = await createAppFor(h, cast);
    const response = await h.call("POST", routesOf(app), {
      token: cast.member,
      body: {
        route: {
          type: "sync",
          path: "/hello",
          image: "iron/hello",
          memory: 128,
          timeout: 30,
          max_concurrency: 1,
          is_public: "false",
          config: {},
        },
      },
    });
    expect(response.status).toBe(200);
    expect(response.body.message).toBe("App route successfully created");
    const route = response.body.route;
    expect(Object.keys(route)).toEqual([
      "path",
      "type",
      "format",
      "image",
      "is_public",
      "memory",
      "timeout",
      "idle_timeout",
      "max_concurrency",
      "max_body_bytes",
      "forward_auth_headers",
      "rate_limit",
      "rate_limit_burst",
      "headers",
      "config",
      "description",
      "invoke_url",
      "created_at",
      "updated_at",
    ]);
    expect(route).toMatchObject({
      path: "/hello",
      type: "sync",
      format: "default",
      image: "iron/hello",
      is_public: false,
      memory: 128,
      timeout: 30,
      idle_timeout: 30,
      max_concurrency: 1,
      max_body_bytes: null,
      forward_auth_headers: false,
      rate_limit: null,
      rate_limit_burst: null,
      headers: {},
      config: {},
      description: "",
      invoke_url: `http://picasso.test/v1/r/${cast.projectId}/${app}/hello`,
    });
    expect(route.updated_at).toBe(route.created_at);
    const [engineRoute] = await engineRoutesOf(app);
    expect(engineRoute).toMatchObject({
      path: "/hello",
      image: "iron/hello",
      memory: 128,
      timeout: 30,
      jwt_key: "",
    });
  });

  it("returns is_public as a JSON boolean and the public invoke URL for a public route", async () => {
    const app = await createAppFor(h, cast);
    const route = await createRouteFor(h, cast, app, { path: "/hook", is_public: "true" });
    expect(route.is_public).toBe(true);
    expect(route.invoke_url).toBe(`http://picasso.test/r/${app}/hook`);
    const boolean = await createRouteFor(h, cast, app, { path: "/hook2", is_public: true });
    expect(boolean.is_public).toBe(true);
  });

  it("lists routes sorted by path with the CLI's columns, from MySQL only", async () => {
    const app = await createAppFor(h, cast);
    for (const path of ["/b", "/a/z", "/a"]) await createRouteFor(h, cast, app, { path });
    h.fake.clearRequests();
    const response = await h.call("GET", routesOf(app), { token: cast.reader });
    expect(response.status).toBe(200);
    expect(response.body.message).toBe("Successfully loaded app routes");
    expect(response.body.routes.map((route: { path: string }) => route.path)).toEqual(["/a", "/a/z", "/b"]);
    for (const route of response.body.routes) {
      for (const column of [
        "type",
        "path",
        "image",
        "memory",
        "timeout",
        "max_concurrency",
        "is_public",
        "config",
      ]) {
        expect(route).toHaveProperty(column);
      }
    }
    expect(response.body.next).toBeNull();
    expect(h.fake.requests).toEqual([]);
  });

  it("shows a route of several segments, addressed as the CLI appends it", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/a/b/c" });
    h.fake.clearRequests();
    for (const suffix of ["/a/b/c", "/a/b/c/"]) {
      const response = await h.call("GET", `${routesOf(app)}${suffix}`, { token: cast.reader });
      expect(response.status, suffix).toBe(200);
      expect(response.body.message).toBe("Successfully loaded app route");
      expect(response.body.route.path).toBe("/a/b/c");
    }
    expect(h.fake.requests).toEqual([]);
  });

  it("updates with the CLI's flat PUT body of changed fields only", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/x", memory: 256 });
    const response = await h.call("PUT", `${routesOf(app)}/x`, {
      token: cast.member,
      body: { type: "async" },
    });
    expect(response.status).toBe(200);
    expect(response.body.message).toBe("Route successfully updated");
    expect(response.body.route).toMatchObject({ type: "async", memory: 256 });
    expect((await engineRoutesOf(app))[0]).toMatchObject({ type: "async", memory: 256 });
  });

  it("deletes one route only, answering 200 with a JSON message", async () => {
    const app = await createAppFor(h, cast);
    for (const path of ["/one", "/two", "/one/deeper"]) await createRouteFor(h, cast, app, { path });
    const response = await h.call("DELETE", `${routesOf(app)}/one`, { token: cast.member });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ message: "Route successfully deleted" });
    expect((await routeRows(h, app)).map((row) => row.path).sort()).toEqual(["/one/deeper", "/two"]);
    expect((await engineRoutesOf(app)).map((route) => route.path).sort()).toEqual(["/one/deeper", "/two"]);
    expect((await h.call("GET", `${routesOf(app)}/one`, { token: cast.reader })).status).toBe(404);
  });
});

describe("routes: fields, defaults and normalisation", () => {
  it("fills the documented defaults", async () => {
    const app = await createAppFor(h, cast);
    const response = await h.call("POST", routesOf(app), {
      token: cast.member,
      body: { path: "hello", image: "hello" },
    });
    expect(response.status).toBe(200);
    expect(response.body.route).toMatchObject({
      path: "/hello",
      type: "sync",
      format: "default",
      memory: 128,
      timeout: 30,
      idle_timeout: 30,
      max_concurrency: 1,
      is_public: false,
      headers: {},
      config: {},
      description: "",
    });
  });

  it("drops one trailing slash and stores safe characters verbatim", async () => {
    const app = await createAppFor(h, cast);
    const trailing = await createRouteFor(h, cast, app, { path: "/trail/" });
    expect(trailing.path).toBe("/trail");
    const odd = await createRouteFor(h, cast, app, { path: "/A.b_c~d-e/..." });
    expect(odd.path).toBe("/A.b_c~d-e/...");
    expect((await h.call("GET", `${routesOf(app)}/A.b_c~d-e/...`, { token: cast.reader })).status).toBe(200);
    // Paths compare byte for byte: /Trail is another route.
    expect((await h.call("GET", `${routesOf(app)}/Trail`, { token: cast.reader })).status).toBe(404);
  });

  it("stores every field and sends the engine what it can serve", async () => {
    const app = await createAppFor(h, cast);
    const route = await createRouteFor(h, cast, app, {
      path: "/hot",
      format: "http",
      type: "sync",
      memory: 512,
      timeout: 120,
      idle_timeout: 5,
      max_concurrency: 4,
      headers: { "content-type": ["application/json"], "x-multi": ["a", "b"] },
      config: { DB_HOST: "db", _private: "1" },
      description: "hot one",
    });
    expect(route).toMatchObject({
      format: "http",
      memory: 512,
      timeout: 120,
      idle_timeout: 5,
      max_concurrency: 4,
      // Canonical names, as the engine stores them after any PATCH.
      headers: { "Content-Type": ["application/json"], "X-Multi": ["a", "b"] },
      config: { DB_HOST: "db", _private: "1" },
      description: "hot one",
    });
    expect((await engineRoutesOf(app))[0]).toMatchObject({
      format: "http",
      idle_timeout: 5,
      max_concurrency: 4,
      headers: { "Content-Type": ["application/json"], "X-Multi": ["a", "b"] },
      config: { DB_HOST: "db", _private: "1" },
    });
  });
});

describe("routes: PUT and PATCH", () => {
  it("PUT replaces config and headers wholesale and accepts a wrapped body", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/p", config: { A: "1", B: "2" }, headers: { "X-A": ["1"] } });
    const response = await h.call("PUT", `${routesOf(app)}/p`, {
      token: cast.member,
      body: { route: { config: { C: "3" }, headers: { "X-B": ["2"] } } },
    });
    expect(response.status).toBe(200);
    expect(response.body.route).toMatchObject({ config: { C: "3" }, headers: { "X-B": ["2"] } });
    expect((await engineRoutesOf(app))[0]).toMatchObject({ config: { C: "3" }, headers: { "X-B": ["2"] } });
  });

  it("PATCH merges config and headers: null deletes, a given header replaces its values", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, {
      path: "/m",
      config: { A: "1", B: "2" },
      headers: { "X-Keep": ["k"], "X-Change": ["old"], "X-Drop": ["d"] },
    });
    const response = await h.call("PATCH", `${routesOf(app)}/m`, {
      token: cast.member,
      body: { config: { B: null, C: "3" }, headers: { "x-change": ["new"], "X-Drop": null, "X-Add": ["a"] } },
    });
    expect(response.status).toBe(200);
    const expected = {
      config: { A: "1", C: "3" },
      headers: { "X-Keep": ["k"], "X-Change": ["new"], "X-Add": ["a"] },
    };
    expect(response.body.route).toMatchObject(expected);
    // The engine appends header values on PATCH; Picasso deletes then sets, so values are exact.
    const [engineRoute] = await engineRoutesOf(app);
    expect(engineRoute?.config).toEqual(expected.config);
    expect(engineRoute?.headers).toEqual(expected.headers);
  });

  it("changes is_public (the original could not), which moves the invoke URL", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/flip" });
    h.fake.clearRequests();
    const response = await h.call("PATCH", `${routesOf(app)}/flip`, {
      token: cast.member,
      body: { is_public: true },
    });
    expect(response.status).toBe(200);
    expect(response.body.route.is_public).toBe(true);
    expect(response.body.route.invoke_url).toBe(`http://picasso.test/r/${app}/flip`);
    // Visibility is Picasso's business: the engine is not called.
    expect(h.fake.requests).toEqual([]);
    const back = await h.call("PUT", `${routesOf(app)}/flip`, {
      token: cast.member,
      body: { is_public: "false" },
    });
    expect(back.body.route.is_public).toBe(false);
  });

  it("accepts the route's own path in an update body", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/same/path" });
    const response = await h.call("PUT", `${routesOf(app)}/same/path`, {
      token: cast.member,
      body: { path: "/same/path", memory: 64 },
    });
    expect(response.status).toBe(200);
    expect(response.body.route.memory).toBe(64);
  });
});

describe("routes: pagination", () => {
  it("pages by path", async () => {
    const app = await createAppFor(h, cast);
    for (const path of ["/c", "/a", "/b"]) await createRouteFor(h, cast, app, { path });
    const first = await h.call("GET", `${routesOf(app)}?limit=2`, { token: cast.reader });
    expect(first.body.routes.map((route: { path: string }) => route.path)).toEqual(["/a", "/b"]);
    expect(first.body.next_marker).toBe("/b");
    expect(first.body.next).toBe(`http://picasso.test${routesOf(app)}?limit=2&marker=%2Fb`);
    const rest = await h.call("GET", first.body.next.replace("http://picasso.test", ""), {
      token: cast.reader,
    });
    expect(rest.body.routes.map((route: { path: string }) => route.path)).toEqual(["/c"]);
    expect(rest.body.next_marker).toBeNull();
  });
});

describe("routes: jwt_key", () => {
  it("is never returned, even when the engine has one", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/guarded" });
    const engineName = (await appRow(h, app))?.engineName;
    await fetch(`${h.fake.apiUrl}/apps/${engineName}/routes/guarded`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ route: { jwt_key: "engine-side-secret" } }),
    });
    for (const path of [routesOf(app), `${routesOf(app)}/guarded`]) {
      const response = await h.call("GET", path, { token: cast.reader });
      expect(JSON.stringify(response.body)).not.toMatch(/jwt_key|engine-side-secret/);
    }
    const updated = await h.call("PATCH", `${routesOf(app)}/guarded`, {
      token: cast.member,
      body: { memory: 64 },
    });
    expect(JSON.stringify(updated.body)).not.toMatch(/jwt_key|engine-side-secret/);
  });
});
