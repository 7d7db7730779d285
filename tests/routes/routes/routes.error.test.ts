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
let app: string;

beforeAll(async () => {
  h = await startHarness();
  cast = await castFor(h);
  app = await createAppFor(h, cast);
});
afterAll(() => h?.close());

const routesOf = (name: string) => `/v1/${cast.projectId}/apps/${name}/routes`;
const engineRoutesOf = async (name: string) => h.fake.routes((await appRow(h, name))?.engineName ?? "");

describe("routes: invalid fields are refused with 400 naming the field", () => {
  const valid = { path: "/ok", image: "hello" };
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["missing path", { image: "hello" }, /path/],
    ["missing image", { path: "/ok" }, /image/],
    ["empty image", { ...valid, image: "" }, /image: must not be empty/],
    ["image with whitespace", { ...valid, image: "hello world" }, /image/],
    ["image with a newline", { ...valid, image: "hello\nworld" }, /image/],
    ["image too long", { ...valid, image: `a${"b".repeat(512)}` }, /image: must be at most 512/],
    ["type", { ...valid, type: "batch" }, /type: must be sync or async/],
    ["format json (listed by the swagger, refused by the engine)", { ...valid, format: "json" }, /format/],
    ["memory 0", { ...valid, memory: 0 }, /memory: must be between 8 and 8192/],
    ["memory too big", { ...valid, memory: 100_000 }, /memory/],
    ["memory as a string", { ...valid, memory: "128" }, /memory: must be a number/],
    ["memory fractional", { ...valid, memory: 1.5 }, /memory: must be an integer/],
    ["timeout 0", { ...valid, timeout: 0 }, /timeout/],
    ["timeout negative", { ...valid, timeout: -1 }, /timeout/],
    ["idle_timeout 0", { ...valid, idle_timeout: 0 }, /idle_timeout/],
    ["max_concurrency 0", { ...valid, max_concurrency: 0 }, /max_concurrency/],
    ["is_public yes", { ...valid, is_public: "yes" }, /is_public: must be a boolean or "true"\/"false"/],
    ["is_public 1", { ...valid, is_public: 1 }, /is_public/],
    ["max_body_bytes 0", { ...valid, max_body_bytes: 0 }, /max_body_bytes: must be between 1 and 4294967296/],
    [
      "max_body_bytes over 4 GiB",
      { ...valid, max_body_bytes: 4294967297 },
      /max_body_bytes: must be between 1 and 4294967296/,
    ],
    ["max_body_bytes fractional", { ...valid, max_body_bytes: 10.5 }, /max_body_bytes: must be an integer/],
    [
      "max_body_bytes as a string",
      { ...valid, max_body_bytes: "1000" },
      /max_body_bytes: must be an integer or null/,
    ],
    [
      "forward_auth_headers yes",
      { ...valid, forward_auth_headers: "yes" },
      /forward_auth_headers: must be a boolean/,
    ],
    ["forward_auth_headers null", { ...valid, forward_auth_headers: null }, /forward_auth_headers/],
    [
      "header with an empty list",
      { ...valid, headers: { "X-A": [] } },
      /headers\.X-A: must have at least one value/,
    ],
    ["header value not a list", { ...valid, headers: { "X-A": "v" } }, /headers\.X-A/],
    ["header name invalid", { ...valid, headers: { "X A": ["v"] } }, /headers\.X A/],
    ["header value with CRLF", { ...valid, headers: { "X-A": ["v\r\nSet-Cookie: x"] } }, /headers\.X-A/],
    [
      "header managed by the server",
      { ...valid, headers: { "content-length": ["1"] } },
      /headers\.content-length/,
    ],
    ["header given twice", { ...valid, headers: { "X-A": ["1"], "x-a": ["2"] } }, /given twice/],
    ["config value not a string", { ...valid, config: { A: true } }, /config\.A/],
    ["config key with a dash", { ...valid, config: { "A-B": "v" } }, /config\.A-B/],
    ["jwt_key", { ...valid, jwt_key: "secret" }, /jwt_key/],
    ["unknown field", { ...valid, colour: "blue" }, /colour/],
    ["description too long", { ...valid, description: "x".repeat(1025) }, /description/],
  ];
  for (const [label, route, message] of cases) {
    it(`create: ${label}`, async () => {
      h.fake.clearRequests();
      const response = await h.call("POST", routesOf(app), { token: cast.member, body: { route } });
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe("validation_failed");
      expect(response.body.error.message).toMatch(message);
      expect(h.fake.requests).toEqual([]);
      expect(await routeRows(h, app)).toEqual([]);
    });
  }
});

describe("routes: hostile paths are refused or stored verbatim, never interpreted", () => {
  const refused: [string, RegExp][] = [
    ["/", /at least one segment/],
    ["", /must not be empty/],
    ["/../etc/passwd", /"\.\." segments/],
    ["/a/../b", /"\.\." segments/],
    ["/a/./b", /"\." segments/],
    ["//a", /empty segments/],
    ["/a//b", /empty segments/],
    ["/a?x=1", /found "\?"/],
    ["/a#frag", /found "#"/],
    ["/:id", /found ":"/],
    ["/*", /found "\*"/],
    ["/%2e%2e/x", /found "%"/],
    ["/a%2Fb", /found "%"/],
    ["/a b", /found U\+0020/],
    ["/café", /found U\+00E9/],
    ["/a\u0000b", /found U\+0000/],
    ["/a\tb", /found U\+0009/],
    ["/x'; DROP TABLE routes; --", /found "'"/],
    ["/a\\b", /found "\\"/],
    [`/${"a/".repeat(17)}`, /at most 16 segments/],
    [`/${"a".repeat(65)}`, /at most 64 characters/],
    [`/${"abcdefghij/".repeat(19)}abcdefghij`, /at most 200 characters/],
  ];
  for (const [path, message] of refused) {
    it(`refuses ${JSON.stringify(path)}`, async () => {
      const response = await h.call("POST", routesOf(app), {
        token: cast.member,
        body: { route: { path, image: "hello" } },
      });
      expect(response.status).toBe(400);
      expect(response.body.error.message).toMatch(/path: /);
      expect(response.body.error.message).toMatch(message);
    });
  }

  it("refuses escapes and dot segments in the URL of an existing route", async () => {
    await createRouteFor(h, cast, app, { path: "/real/route" });
    for (const suffix of ["/real%2Froute", "/real/%72oute", "/real/route%00", "/%C3%A9", "/real/route;x"]) {
      const response = await h.call("GET", `${routesOf(app)}${suffix}`, { token: cast.reader });
      expect(response.status, suffix).toBe(400);
      expect(response.body.error.message).toMatch(/route: /);
    }
    // The URL parser resolves dot segments (encoded ones too) before any routing, as every HTTP
    // stack does: `..` climbs out of the routes collection, `.` is the same URL as without it.
    for (const suffix of ["/../../apps", "/%2e%2e/real/route", "/%2E%2E/%2E%2E/x"]) {
      const response = await h.call("GET", `${routesOf(app)}${suffix}`, { token: cast.reader });
      expect([400, 404], suffix).toContain(response.status);
    }
    const dot = await h.call("GET", `${routesOf(app)}/real/./route`, { token: cast.reader });
    expect(dot.body.route.path).toBe("/real/route");
    expect((await routeRows(h, app)).map((row) => row.path)).toContain("/real/route");
  });
});

describe("routes: the original's error scenarios", () => {
  it("404 for an unknown app, for every method", async () => {
    const unknown = `nope-${cast.projectId}`;
    for (const [method, suffix, body] of [
      ["GET", "", undefined],
      ["POST", "", { route: { path: "/x", image: "hello" } }],
      ["GET", "/x", undefined],
      ["PUT", "/x", { memory: 64 }],
      ["PATCH", "/x", { memory: 64 }],
      ["DELETE", "/x", undefined],
    ] as const) {
      const response = await h.call(method, `${routesOf(unknown)}${suffix}`, { token: cast.member, body });
      expect(response.status, `${method} ${suffix}`).toBe(404);
      expect(response.body.error.message).toBe(`App ${unknown} not found`);
    }
  });

  it("404 for an unknown route", async () => {
    for (const [method, body] of [
      ["GET", undefined],
      ["PUT", { memory: 64 }],
      ["PATCH", { memory: 64 }],
      ["DELETE", undefined],
    ] as const) {
      const response = await h.call(method, `${routesOf(app)}/missing/route`, { token: cast.member, body });
      expect(response.status, method).toBe(404);
      expect(response.body.error.message).toBe(`Route /missing/route not found in app ${app}`);
    }
  });

  it("409 for a second create of the same path (also when spelled with a trailing slash)", async () => {
    await createRouteFor(h, cast, app, { path: "/twice" });
    for (const path of ["/twice", "/twice/", "twice"]) {
      const response = await h.call("POST", routesOf(app), {
        token: cast.member,
        body: { route: { path, image: "x" } },
      });
      expect(response.status, path).toBe(409);
      expect(response.body.error).toEqual({
        message: `Route /twice already exists in app ${app}`,
        code: "conflict",
      });
    }
    expect((await engineRoutesOf(app)).filter((route) => route.path === "/twice")).toHaveLength(1);
  });

  it("refuses a different path or a bad field in an update, changing nothing", async () => {
    await createRouteFor(h, cast, app, { path: "/fixed", memory: 128 });
    for (const [method, body, message] of [
      ["PUT", { path: "/other" }, /path: cannot change/],
      ["PATCH", { route: { path: "/other" } }, /path: cannot change/],
      ["PUT", { memory: 0 }, /memory/],
      ["PATCH", { headers: { "X-A": [] } }, /headers\.X-A/],
      ["PUT", { config: { A: null } }, /config\.A/],
      ["PATCH", { jwt_key: "k" }, /jwt_key/],
      ["PUT", { max_body_bytes: 0 }, /max_body_bytes/],
      ["PATCH", { max_body_bytes: -5 }, /max_body_bytes/],
      ["PATCH", { forward_auth_headers: 1 }, /forward_auth_headers/],
    ] as const) {
      const response = await h.call(method, `${routesOf(app)}/fixed`, { token: cast.member, body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.error.message).toMatch(message);
    }
    expect((await routeRows(h, app)).find((row) => row.path === "/fixed")?.memory).toBe(128);
  });

  it("answers 415 and 400 to bodies that are not JSON", async () => {
    const notJson = await h.call("POST", routesOf(app), {
      token: cast.member,
      rawBody: '{"route": {"path": "/x", "image": "y"}}',
      contentType: "text/plain",
    });
    expect(notJson.status).toBe(415);
    const malformed = await h.call("POST", routesOf(app), { token: cast.member, rawBody: '{"route": ' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe("malformed_json");
  });
});

describe("routes: simultaneous creates", () => {
  it("lets exactly one of ten identical creates win; the rest get 409", async () => {
    const own = await createAppFor(h, cast);
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        h.call("POST", routesOf(own), {
          token: cast.member,
          body: { route: { path: "/race", image: "hello" } },
        }),
      ),
    );
    expect(responses.map((response) => response.status).sort()).toEqual([
      200, 409, 409, 409, 409, 409, 409, 409, 409, 409,
    ]);
    expect(await routeRows(h, own)).toHaveLength(1);
    expect(await engineRoutesOf(own)).toHaveLength(1);
  });

  it("creates ten different routes of one app in parallel", async () => {
    const own = await createAppFor(h, cast);
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        h.call("POST", routesOf(own), {
          token: cast.member,
          body: { route: { path: `/r${i}`, image: "hello" } },
        }),
      ),
    );
    expect(responses.every((response) => response.status === 200)).toBe(true);
    expect(await engineRoutesOf(own)).toHaveLength(10);
  });
});

describe("routes: the engine failing leaves MySQL and the engine consistent", () => {
  it("create while the engine is stopped: 503, no row, no engine route", async () => {
    const own = await createAppFor(h, cast);
    await h.fake.stop();
    try {
      const response = await h.call("POST", routesOf(own), {
        token: cast.member,
        body: { route: { path: "/down", image: "hello" } },
      });
      expect(response.status).toBe(503);
    } finally {
      await h.fake.restart();
    }
    expect(await routeRows(h, own)).toEqual([]);
    expect(await engineRoutesOf(own)).toEqual([]);
  });

  it("create with the engine hanging: 504, no row, no engine route", async () => {
    const own = await createAppFor(h, cast);
    h.fake.setFault({ kind: "hang", scope: "v1" });
    try {
      const response = await h.call("POST", routesOf(own), {
        token: cast.member,
        body: { route: { path: "/slow", image: "hello" } },
      });
      expect(response.status).toBe(504);
    } finally {
      h.fake.setFault(null);
    }
    expect(await routeRows(h, own)).toEqual([]);
    expect(await engineRoutesOf(own)).toEqual([]);
  });

  it("update while the engine is stopped: 503, both sides as before", async () => {
    const own = await createAppFor(h, cast);
    await createRouteFor(h, cast, own, { path: "/u", memory: 128, headers: { "X-A": ["1"] } });
    await h.fake.stop();
    try {
      const response = await h.call("PATCH", `${routesOf(own)}/u`, {
        token: cast.member,
        body: { memory: 256, headers: { "X-A": ["2"] } },
      });
      expect(response.status).toBe(503);
    } finally {
      await h.fake.restart();
    }
    expect((await routeRows(h, own))[0]).toMatchObject({ memory: 128, headers: { "X-A": ["1"] } });
    expect((await engineRoutesOf(own))[0]).toMatchObject({ memory: 128, headers: { "X-A": ["1"] } });
  });

  it("update refused by the engine: 502 with its message, both sides as before", async () => {
    const own = await createAppFor(h, cast);
    await createRouteFor(h, cast, own, { path: "/u", config: { A: "1" } });
    h.fake.setFault({ kind: "status", status: 500, message: "store locked" });
    try {
      const response = await h.call("PUT", `${routesOf(own)}/u`, {
        token: cast.member,
        body: { config: { B: "2" } },
      });
      expect(response.status).toBe(502);
      expect(response.body.error.message).toBe("Function engine error: store locked");
    } finally {
      h.fake.setFault(null);
    }
    expect((await routeRows(h, own))[0]?.config).toEqual({ A: "1" });
    expect((await engineRoutesOf(own))[0]?.config).toEqual({ A: "1" });
  });

  it("delete while the engine is stopped: 503, the route stays on both sides", async () => {
    const own = await createAppFor(h, cast);
    await createRouteFor(h, cast, own, { path: "/d" });
    await h.fake.stop();
    try {
      expect((await h.call("DELETE", `${routesOf(own)}/d`, { token: cast.member })).status).toBe(503);
    } finally {
      await h.fake.restart();
    }
    expect(await routeRows(h, own)).toHaveLength(1);
    expect(await engineRoutesOf(own)).toHaveLength(1);
  });

  it("recreates a route the engine lost when it is updated", async () => {
    const own = await createAppFor(h, cast);
    await createRouteFor(h, cast, own, { path: "/lost", config: { A: "1" } });
    const engineName = (await appRow(h, own))?.engineName;
    await fetch(`${h.fake.apiUrl}/apps/${engineName}/routes/lost`, { method: "DELETE" });
    const response = await h.call("PATCH", `${routesOf(own)}/lost`, {
      token: cast.member,
      body: { memory: 64 },
    });
    expect(response.status).toBe(200);
    expect((await engineRoutesOf(own))[0]).toMatchObject({ path: "/lost", memory: 64, config: { A: "1" } });
  });

  it("replaces a leftover engine route MySQL does not know when creating it", async () => {
    const own = await createAppFor(h, cast);
    const engineName = (await appRow(h, own))?.engineName;
    await fetch(`${h.fake.apiUrl}/apps/${engineName}/routes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ route: { path: "/left", image: "stale", memory: 64 } }),
    });
    const route = await createRouteFor(h, cast, own, { path: "/left", image: "fresh" });
    expect(route.image).toBe("fresh");
    expect((await engineRoutesOf(own))[0]).toMatchObject({ image: "fresh", memory: 128 });
  });
});
