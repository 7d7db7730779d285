import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIronFunctionsEngine } from "../../../../app/services/engine/ironfunctions/index.ts";
import { createBearerSigner } from "../../../../app/services/engine/ironfunctions/jwt.ts";
import { EngineError } from "../../../../app/services/engine/types.ts";
import { engineRoute } from "../../../support/engine-route.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "../../../support/ironfunctions/server.ts";

const engineApp = () => `pc-${randomBytes(14).toString("hex").slice(0, 27)}`;

const route = engineRoute;

async function engineErrorOf(promise: Promise<unknown>): Promise<EngineError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(EngineError);
  return error as EngineError;
}

let fake: FakeIronFunctions;
let engine: ReturnType<typeof createIronFunctionsEngine>;

beforeAll(async () => {
  fake = await startFakeIronFunctions();
  engine = createIronFunctionsEngine({ url: fake.apiUrl, requestTimeoutMs: 1_500, connectTimeoutMs: 1_000 });
});
afterAll(async () => {
  await engine.close();
  await fake.stop();
});

describe("IronFunctions driver: apps", () => {
  it("creates, lists, merges config and deletes", async () => {
    const name = engineApp();
    await engine.createApp({ name, config: { A: "1", B: "2" } });
    expect((await engine.listApps()).find((app) => app.name === name)).toEqual({
      name,
      config: { A: "1", B: "2" },
    });

    fake.clearRequests();
    await engine.updateAppConfig(name, { B: "3", C: "4" }, { A: "1", B: "2" });
    expect(fake.apps().find((app) => app.name === name)?.config).toEqual({ B: "3", C: "4" });
    // One PATCH with only the changes; `""` is how the engine deletes a key.
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`PATCH /v1/apps/${name}`]);

    fake.clearRequests();
    await engine.updateAppConfig(name, { B: "3", C: "4" }, { B: "3", C: "4" });
    expect(fake.requests).toEqual([]);

    await engine.deleteApp(name);
    expect(fake.apps().some((app) => app.name === name)).toBe(false);
  });

  it("maps a duplicate to conflict and an unknown app to not_found", async () => {
    const name = engineApp();
    await engine.createApp({ name, config: {} });
    expect((await engineErrorOf(engine.createApp({ name, config: {} }))).kind).toBe("conflict");
    await engine.deleteApp(name);
    // The default store answers 500 "bucket not found": still a not_found to callers.
    const missing = await engineErrorOf(engine.deleteApp(name));
    expect(missing.kind).toBe("not_found");
  });

  it("refuses to delete an app with routes (rejected, with the engine's message)", async () => {
    const name = engineApp();
    await engine.createRoute(name, route());
    const error = await engineErrorOf(engine.deleteApp(name));
    expect(error.kind).toBe("rejected");
    expect(error.message).toBe("Cannot remove apps with routes");
  });

  it("enforces the real app-name rule before sending anything", async () => {
    fake.clearRequests();
    for (const bad of ["UPPER", "a".repeat(31), "x/y", "", "ü"]) {
      expect((await engineErrorOf(engine.createRoute(bad, route()))).kind).toBe("rejected");
      expect((await engineErrorOf(engine.deleteApp(bad))).kind).toBe("rejected");
    }
    expect(fake.requests).toEqual([]);
  });
});

describe("IronFunctions driver: routes", () => {
  it("creates a hot route with idle_timeout > 0 and never sends empty header lists", async () => {
    const name = engineApp();
    await engine.createRoute(
      name,
      route({ path: "/hot", format: "http", idleTimeout: 0, headers: { "X-Empty": [], "X-Ok": ["1"] } }),
    );
    const [stored] = fake.routes(name);
    expect(stored?.idle_timeout).toBeGreaterThan(0);
    expect(stored?.headers).toEqual({ "X-Ok": ["1"] });
  });

  it("updates to exactly the target: replaced headers, deleted config keys, changed fields", async () => {
    const name = engineApp();
    const before = route({
      path: "/a/b",
      headers: { "X-Keep": ["k"], "X-Change": ["old"], "X-Drop": ["d"] },
      config: { KEEP: "1", DROP: "2", CHANGE: "3" },
    });
    await engine.createRoute(name, before);
    const after = route({
      path: "/a/b",
      image: "echo",
      type: "async",
      memory: 256,
      timeout: 60,
      idleTimeout: 45,
      maxConcurrency: 3,
      headers: { "X-Keep": ["k"], "X-Change": ["new", "newer"], "X-Add": ["a"] },
      config: { KEEP: "1", CHANGE: "4", ADD: "5" },
    });
    await engine.updateRoute(name, after, before);
    const [stored] = await engine.listRoutes(name);
    expect(stored).toEqual(after);
    // Applying the same change again (a retry, or an undo that replays) keeps the same result:
    // headers are deleted before they are set, so values are never appended twice.
    await engine.updateRoute(name, after, before);
    expect((await engine.listRoutes(name))[0]).toEqual(after);
    // And the reverse plan restores the original.
    await engine.updateRoute(name, before, after);
    expect((await engine.listRoutes(name))[0]).toEqual(before);
  });

  it("refuses zero values the engine's PATCH cannot store, without calling it", async () => {
    const name = engineApp();
    await engine.createRoute(name, route());
    fake.clearRequests();
    const error = await engineErrorOf(engine.updateRoute(name, route({ memory: 0 }), route()));
    expect(error.kind).toBe("rejected");
    expect(error.message).toContain("memory");
    expect(fake.requests).toEqual([]);
  });

  it("never returns jwt_key, even when the engine has one", async () => {
    const name = engineApp();
    const response = await fetch(`${fake.apiUrl}/apps/${name}/routes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ route: { path: "/secret", image: "hello", jwt_key: "s3cr3t-key" } }),
    });
    expect(response.status).toBe(200);
    const routes = await engine.listRoutes(name);
    expect(routes).toHaveLength(1);
    expect(JSON.stringify(routes)).not.toContain("s3cr3t-key");
    expect(Object.keys(routes[0] ?? {})).not.toContain("jwtKey");
  });

  it("lists routes sorted by path, and an unknown app's routes as empty", async () => {
    const name = engineApp();
    for (const path of ["/b", "/a/z", "/a"]) await engine.createRoute(name, route({ path }));
    expect((await engine.listRoutes(name)).map((r) => r.path)).toEqual(["/a", "/a/z", "/b"]);
    expect(await engine.listRoutes(engineApp())).toEqual([]);
  });

  it("deletes one route only, and maps a duplicate create to conflict", async () => {
    const name = engineApp();
    await engine.createRoute(name, route({ path: "/one" }));
    await engine.createRoute(name, route({ path: "/two" }));
    expect((await engineErrorOf(engine.createRoute(name, route({ path: "/one" })))).kind).toBe("conflict");
    await engine.deleteRoute(name, "/one");
    expect(fake.routes(name).map((r) => r.path)).toEqual(["/two"]);
  });

  it("passes validation messages without the engine's wrapping", async () => {
    const name = engineApp();
    const error = await engineErrorOf(engine.createRoute(name, route({ image: "" })));
    expect(error.kind).toBe("rejected");
    expect(error.message).not.toContain("validation failure list");
  });
});

describe("IronFunctions driver: failures", () => {
  it("reports a stopped engine as unavailable and recovers after restart", async () => {
    const own = await startFakeIronFunctions();
    const client = createIronFunctionsEngine({ url: own.apiUrl, requestTimeoutMs: 1_500 });
    try {
      await client.ping();
      await own.stop();
      expect((await engineErrorOf(client.ping())).kind).toBe("unavailable");
      expect((await engineErrorOf(client.listApps())).kind).toBe("unavailable");
      await own.restart();
      await expect(client.listApps()).resolves.toEqual([]);
    } finally {
      await client.close();
      await own.stop();
    }
  });

  it("reports dropped connections as unavailable", async () => {
    fake.setFault({ kind: "refuse-connections" });
    try {
      expect((await engineErrorOf(engine.listApps())).kind).toBe("unavailable");
    } finally {
      fake.setFault(null);
    }
  });

  it("gives up on a hanging engine with a timeout", async () => {
    const client = createIronFunctionsEngine({ url: fake.apiUrl, requestTimeoutMs: 300 });
    fake.setFault({ kind: "hang", scope: "v1" });
    try {
      const error = await engineErrorOf(client.listApps());
      expect(error.kind).toBe("timeout");
    } finally {
      fake.setFault(null);
      await client.close();
    }
  });

  it("passes an engine's 5xx message on as failed", async () => {
    fake.setFault({ kind: "status", status: 500, message: "datastore exploded" });
    try {
      const error = await engineErrorOf(engine.createApp({ name: engineApp(), config: {} }));
      expect(error.kind).toBe("failed");
      expect(error.status).toBe(500);
      expect(error.message).toBe("datastore exploded");
    } finally {
      fake.setFault(null);
    }
  });

  it("reports every failed call to onError (the engine-error metric)", async () => {
    const seen: string[] = [];
    const client = createIronFunctionsEngine({ url: fake.apiUrl, onError: (error) => seen.push(error.kind) });
    try {
      const name = engineApp();
      await client.createApp({ name, config: {} });
      await engineErrorOf(client.createApp({ name, config: {} }));
      await client.deleteApp(name);
      await engineErrorOf(client.deleteApp(name));
      expect(seen).toEqual(["conflict", "not_found"]);
    } finally {
      await client.close();
    }
  });

  it("reports invocation failures to onError too, on both invocation paths", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const seen: string[] = [];
    const client = createIronFunctionsEngine({
      url: `http://127.0.0.1:${port}/v1`,
      onError: (error) => seen.push(error.kind),
    });
    const call = {
      engineApp: engineApp(),
      appConfig: {},
      requestUrl: "http://picasso/r/app/hello",
      route: route({ path: "/hello" }),
      method: "GET",
      path: "/hello",
      query: "",
      forwardAuthHeaders: false,
      requestId: "req-00000000-0000-0000-0000-000000000000",
      body: null,
    };
    try {
      await engineErrorOf(
        client.invoke({ ...call, headers: new Headers(), signal: new AbortController().signal }),
      );
      await engineErrorOf(
        client.invokeStreaming(
          {
            ...call,
            rawHeaders: [],
            upload: null,
            signal: { aborted: false, on() {}, removeListener() {} },
          },
          () => new Writable({ write: (_chunk, _encoding, done) => done() }),
        ),
      );
      expect(seen).toEqual(["unavailable", "unavailable"]);
    } finally {
      await client.close();
    }
  });

  it("reports an unresolvable host as unavailable", async () => {
    const client = createIronFunctionsEngine({ url: "http://picasso-no-such-host.invalid:8080/v1" });
    try {
      expect((await engineErrorOf(client.ping())).kind).toBe("unavailable");
    } finally {
      await client.close();
    }
  });
});

describe("IronFunctions driver: JWT_AUTH_KEY", () => {
  it("signs every call when given the key, and is refused without it", async () => {
    const key = randomBytes(16).toString("hex");
    const guarded = await startFakeIronFunctions({ jwtAuthKey: key });
    const signed = createIronFunctionsEngine({ url: guarded.apiUrl, jwtKey: key });
    const unsigned = createIronFunctionsEngine({ url: guarded.apiUrl });
    try {
      const name = engineApp();
      await signed.createApp({ name, config: {} });
      await signed.createRoute(name, route());
      expect((await signed.listRoutes(name)).map((r) => r.path)).toEqual(["/hello"]);
      const authorization = guarded.requests.at(-1)?.headers.authorization;
      expect(authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);

      const refused = await engineErrorOf(unsigned.listApps());
      expect(refused.kind).toBe("failed");
      expect(refused.status).toBe(401);
      expect(refused.message).toContain("credentials");
    } finally {
      await signed.close();
      await unsigned.close();
      await guarded.stop();
    }
  });

  it("caches a short-lived token and renews it before it expires", async () => {
    let now = Date.UTC(2024, 0, 1, 12, 0, 0);
    const sign = createBearerSigner("k", () => now);
    const first = await sign();
    expect(await sign()).toBe(first);
    const claims = decodeJwt(first);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBeLessThanOrEqual(400);
    expect(claims.exp).toBeGreaterThan(now / 1000);
    now += 250_000;
    const second = await sign();
    expect(second).not.toBe(first);
  });
});
