import { createHash } from "node:crypto";
import { request as httpRequest } from "node:http";
import { SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cleanPath, detectContentType, uuidV5 } from "./go.ts";
import { checkJwt } from "./jwt.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "./server.ts";

let fn: FakeIronFunctions;
let seq = 0;
const uniq = (prefix: string) => `${prefix}${++seq}`;

beforeAll(async () => {
  fn = await startFakeIronFunctions();
});
afterAll(async () => {
  await fn.stop();
});
afterEach(() => {
  fn.setFault(null);
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${fn.url}${path}`, {
    method,
    headers,
    redirect: "manual",
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  // biome-ignore lint/suspicious/noExplicitAny: test convenience for nested bodies
  return { status: res.status, headers: res.headers, text, json: json as any };
}

interface RawResult {
  status?: number;
  headers?: Record<string, string | string[] | undefined>;
  body?: string;
  error?: string;
  localPort?: number;
}

/** One request on a fresh connection; reports a dropped connection instead of throwing. */
function raw(
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<RawResult> {
  return new Promise((resolve) => {
    const req = httpRequest(`${fn.url}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () =>
        resolve({
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          localPort: res.socket?.localPort,
        }),
      );
    });
    req.on("error", (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end(body);
  });
}

async function createRoute(app: string, route: Record<string, unknown>) {
  const r = await call("POST", `/v1/apps/${app}/routes`, { route });
  expect(r.status, r.text).toBe(200);
  return r.json.route;
}

describe("root endpoints", () => {
  it("answers /, /version and unknown paths like the real server", async () => {
    const root = await call("GET", "/");
    expect(root.json).toEqual({ goto: "https://github.com/iron-io/functions", hello: "world!" });
    const version = await call("GET", "/version");
    expect(version.status).toBe(200);
    expect(version.json).toEqual({ version: "0.2.72" });
    const missing = await call("GET", "/nope");
    expect(missing.status).toBe(404);
    expect(missing.text).toBe('"Not Found"\n');
    expect(missing.headers.get("content-type")).toMatch(/^application\/json/);
  });
});

describe("apps", () => {
  it("creates, reads, lists sorted, patches and deletes", async () => {
    const b = uniq("b-app");
    const a = uniq("a-app");
    expect((await call("POST", "/v1/apps", { app: { name: b } })).status).toBe(200);
    const created = await call("POST", "/v1/apps", { app: { name: a, config: { K: "v", GONE: "x" } } });
    expect(created.json).toEqual({
      message: "App successfully created",
      app: { name: a, config: { K: "v", GONE: "x" } },
    });
    expect((await call("GET", `/v1/apps/${b}`)).json).toEqual({
      message: "Successfully loaded app",
      app: { name: b, config: null },
    });
    const names = (await call("GET", "/v1/apps")).json.apps.map((x: { name: string }) => x.name);
    expect(names).toEqual([...names].sort());
    expect(names.indexOf(a)).toBeLessThan(names.indexOf(b));

    const patched = await call("PATCH", `/v1/apps/${a}`, { app: { config: { GONE: "", NEW: "n" } } });
    expect(patched.json.app.config).toEqual({ K: "v", NEW: "n" });
    expect((await call("PATCH", `/v1/apps/${a}`, { app: { name: a } })).json.error.message).toBe(
      "Could not update app - name is immutable",
    );
    expect((await call("PATCH", "/v1/apps/nope-x", { app: {} })).status).toBe(404);

    const del = await call("DELETE", `/v1/apps/${b}`);
    expect(del.json).toEqual({ message: "App deleted" });
    expect((await call("GET", `/v1/apps/${b}`)).json).toEqual({ error: { message: "App not found" } });
  });

  it("reports the documented errors", async () => {
    const name = uniq("dup");
    await call("POST", "/v1/apps", { app: { name } });
    const dup = await call("POST", "/v1/apps", { app: { name } });
    expect(dup.status).toBe(409);
    expect(dup.json.error.message).toBe("App already exists");
    const missing = await call("POST", "/v1/apps", { nothing: true });
    expect(missing.status).toBe(400);
    expect(missing.json.error.message).toBe("Missing new application");
    for (const bad of ["{bad", "", '{"app":{"name":"x","config":{"a":1}}}', '{"app":"x"}']) {
      const r = await call("POST", "/v1/apps", bad);
      expect(r.status, bad).toBe(400);
      expect(r.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(r.json).toEqual({ error: { message: "Invalid JSON" } });
    }
    expect((await call("PUT", `/v1/apps/${name}`, {})).text).toBe('"Not Found"\n');
    expect((await call("DELETE", "/v1/apps/never-was")).json).toEqual({
      error: { message: "bucket not found" },
    });
  });

  it("emulates the broken name check but keeps the 30 byte limit", async () => {
    const upper = await call("POST", "/v1/apps", { app: { name: "Abc" } });
    expect(upper.status).toBe(500);
    expect(upper.json.error.message).toBe("validation failure list:\nInvalid app name");
    expect((await call("POST", "/v1/apps", { app: { name: "a".repeat(31) } })).status).toBe(500);
    expect((await call("POST", "/v1/apps", { app: { name: "é".repeat(16) } })).status).toBe(500);
    expect((await call("POST", "/v1/apps", { app: { name: "a".repeat(30) } })).status).toBe(200);
    for (const odd of ["x~{}", "Zulu", "ünï"]) {
      expect((await call("POST", "/v1/apps", { app: { name: odd } })).status, odd).toBe(200);
    }
    expect((await call("POST", "/v1/apps", { app: { name: "a.b" } })).status).toBe(500);
  });

  it("decodes JSON leniently", async () => {
    const name = uniq("lenient");
    const r = await call(
      "POST",
      "/v1/apps",
      `{"APP":{"Name":"${name}","extra":[1,2],"CONFIG":{"k":"v"}}} trailing junk`,
    );
    expect(r.status).toBe(200);
    expect(r.json.app).toEqual({ name, config: { k: "v" } });
  });

  it("refuses to delete an app that has routes", async () => {
    const app = uniq("busy");
    await createRoute(app, { path: "/x", image: "hello" });
    const r = await call("DELETE", `/v1/apps/${app}`);
    expect(r.status).toBe(400);
    expect(r.json.error.message).toBe("Cannot remove apps with routes");
  });
});

describe("routes", () => {
  it("creates with defaults, auto-creating the app, and returns jwt_key", async () => {
    const app = uniq("auto");
    const route = await createRoute(app, { path: "/hello", image: "picasso/hello:0.1", jwt_key: "s3cret" });
    expect(route).toEqual({
      app_name: app,
      path: "/hello",
      image: "picasso/hello:0.1",
      memory: 128,
      headers: {},
      type: "sync",
      format: "default",
      max_concurrency: 1,
      timeout: 30,
      idle_timeout: 0,
      config: {},
      jwt_key: "s3cret",
    });
    expect(fn.apps().find((a) => a.name === app)).toEqual({ name: app, config: null });
    expect((await call("GET", `/v1/apps/${app}/routes/hello`)).json.route.jwt_key).toBe("s3cret");
    const dup = await call("POST", `/v1/apps/${app}/routes`, { route: { path: "/hello", image: "x" } });
    expect(dup.status).toBe(409);
    expect(dup.json.error.message).toBe("Route already exists");
  });

  it("validates with doubly wrapped messages and rejects format json", async () => {
    const app = uniq("val");
    const r = await call("POST", `/v1/apps/${app}/routes`, {
      route: { path: "/x", image: "i", format: "json" },
    });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toBe(
      "validation failure list:\nvalidation failure list:\nInvalid route Format",
    );
    const many = await call("POST", `/v1/apps/${app}/routes`, { route: { path: "a/b:c", type: "bad" } });
    expect(many.json.error.message).toBe(
      "validation failure list:\nvalidation failure list:\nMissing route Image\nDynamic URL is not allowed\nInvalid Path format\nInvalid route Type",
    );
    expect((await call("POST", `/v1/apps/${app}/routes`, {})).json.error.message).toBe("Missing new route");
    expect((await call("POST", `/v1/apps/${app}/routes`, { route: { path: "/x", memory: -1 } })).status).toBe(
      400,
    );
    // Validation failed, so the app was not auto-created.
    expect(fn.apps().some((a) => a.name === app)).toBe(false);
  });

  it("lists routes descending by path; unknown app lists empty", async () => {
    const app = uniq("list");
    for (const p of ["/a", "/c", "/b/x", "/B"]) await createRoute(app, { path: p, image: "echo" });
    const list = await call("GET", `/v1/apps/${app}/routes`);
    expect(list.json.message).toBe("Sucessfully listed routes");
    expect(list.json.routes.map((r: { path: string }) => r.path)).toEqual(["/c", "/b/x", "/a", "/B"]);
    const none = await call("GET", "/v1/apps/no-such-app/routes");
    expect(none.status).toBe(200);
    expect(none.json.routes).toEqual([]);
  });

  it("cleans lookup paths, so unclean stored paths are unreachable", async () => {
    const app = uniq("clean");
    await createRoute(app, { path: "/x/", image: "echo" });
    await createRoute(app, { path: "/q?x=1", image: "echo" });
    expect((await call("GET", `/v1/apps/${app}/routes/x/`)).status).toBe(404);
    expect((await call("DELETE", `/v1/apps/${app}/routes/x/`)).status).toBe(200);
    expect(fn.routes(app).map((r) => r.path)).toContain("/x/");
    expect((await call("GET", `/v1/apps/${app}/routes/q%3Fx=1`)).json.route.path).toBe("/q?x=1");
    expect((await call("DELETE", `/v1/apps/${app}/routes/never`)).status).toBe(200);
    expect((await call("DELETE", "/v1/apps/no-app-here/routes/x")).status).toBe(404);
    expect((await call("GET", `/v1/apps/${app}/routes/never`)).json.error.message).toBe("Route not found");
  });

  it("merges PATCH like the real server", async () => {
    const app = uniq("patch");
    await createRoute(app, {
      path: "/p",
      image: "echo",
      config: { KEEP: "1", DROP: "2" },
      headers: { "x-lower": ["a"], Keep: ["k"], Drop: ["d"] },
      jwt_key: "key",
      timeout: 10,
    });
    const r = await call("PATCH", `/v1/apps/${app}/routes/p`, {
      route: {
        image: "hello",
        timeout: 0,
        memory: 0,
        jwt_key: "",
        config: { DROP: "", ADD: "3" },
        headers: { "x-lower": ["b"], keep: ["k2"], drop: [], Nulled: null },
      },
    });
    expect(r.status, r.text).toBe(200);
    expect(r.json.message).toBe("Route successfully updated");
    const route = r.json.route;
    expect(route.image).toBe("hello");
    expect(route.timeout).toBe(10);
    expect(route.memory).toBe(128);
    expect(route.jwt_key).toBe("key");
    expect(route.config).toEqual({ KEEP: "1", ADD: "3" });
    expect(route.headers).toEqual({ "x-lower": ["a"], "X-Lower": ["b"], Keep: ["k", "k2"] });

    const path = await call("PATCH", `/v1/apps/${app}/routes/p`, { route: { path: "/p" } });
    expect(path.status).toBe(400);
    expect(path.json.error.message).toContain("path is immutable");
    const badType = await call("PATCH", `/v1/apps/${app}/routes/missing`, { route: { type: "nope" } });
    expect(badType.status).toBe(400);
    expect((await call("PATCH", `/v1/apps/${app}/routes/missing`, { route: { type: "async" } })).status).toBe(
      404,
    );
  });

  it("redirects wrong trailing slashes", async () => {
    const get = await raw("GET", "/v1/apps/?x=1");
    expect(get.status).toBe(301);
    expect(get.headers?.location).toBe("/v1/apps?x=1");
    const post = await raw("POST", "/v1/apps/someapp/routes/", "{}");
    expect(post.status).toBe(307);
    expect(post.headers?.location).toBe("/v1/apps/someapp/routes");
  });

  it("drops the connection where the real server crashes", async () => {
    const app = uniq("crash");
    await createRoute(app, { path: "/star/*", image: "echo" });
    await createRoute(app, { path: "/emptyhdr", image: "echo", headers: { "X-Empty": [] } });
    await createRoute(app, { path: "/async", image: "echo", type: "async" });
    const crashes: [string, string, string?][] = [
      ["GET", "/v1/routes"],
      ["GET", "/v1/apps//routes"],
      ["POST", "/r//x", ""],
      ["POST", `/v1/apps/${app}/routes`, JSON.stringify({ route: { path: "/%zz", image: "echo" } })],
      ["GET", `/r/${app}/star/*`],
      ["GET", `/r/${app}/emptyhdr`],
      ["PUT", `/r/${app}/async`, "x"],
    ];
    for (const [method, path, body] of crashes) {
      const r = await raw(method, path, body);
      expect(r.error, `${method} ${path}`).toBeDefined();
    }
  });
});

describe("JWT_AUTH_KEY mode", () => {
  it("guards /v1 with a text/plain 401", async () => {
    const secured = await startFakeIronFunctions({ jwtAuthKey: "api-secret" });
    try {
      const no = await fetch(`${secured.apiUrl}/apps`);
      expect(no.status).toBe(401);
      expect(no.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(await no.text()).toBe('{"error":"Invalid API Authorization token."}\n');
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: "HS256" })
        .setExpirationTime("1m")
        .sign(new TextEncoder().encode("api-secret"));
      const ok = await fetch(`${secured.apiUrl}/apps`, { headers: { Authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect((await fetch(`${secured.url}/version`)).status).toBe(200);
    } finally {
      await secured.stop();
    }
  });
});

describe("invocation", () => {
  const app = uniq("inv");
  beforeAll(async () => {
    await call("POST", "/v1/apps", {
      app: { name: app, config: { APP_ONLY: "a", SHARED: "app", "dash-key": "d" } },
    });
    await createRoute(app, { path: "/hello", image: "picasso/hello:0.1" });
    await createRoute(app, { path: "/echo", image: "iron/echo" });
    await createRoute(app, {
      path: "/env",
      image: "env",
      config: { SHARED: "route", METHOD: "OVERRIDDEN" },
    });
    await createRoute(app, { path: "/plainenv", image: "env" });
    await createRoute(app, { path: "/fail", image: "fail", headers: { "X-Route": ["r1", "r2"] } });
    await createRoute(app, { path: "/oom", image: "oom" });
    await createRoute(app, { path: "/slow", image: "sleep", timeout: 1, config: { SLEEP_SECONDS: "5" } });
    await createRoute(app, { path: "/bytes", image: "bytes" });
    await createRoute(app, {
      path: "/json",
      image: "echo",
      headers: { "Content-Type": ["application/json"] },
    });
    await createRoute(app, { path: "/sha", image: "sha256" });
    await createRoute(app, { path: "/ghost", image: "picasso/ghost:1.0" });
  });

  it("404s for unknown apps and routes", async () => {
    expect((await call("GET", "/r/nowhere/x")).json).toEqual({ error: { message: "App not found" } });
    expect((await call("GET", `/r/${app}/nothing`)).json).toEqual({
      error: { message: "Route not found on that application" },
    });
  });

  it("runs a real process with stdin from the body or the payload query", async () => {
    const hello = await call("POST", `/r/${app}/hello`, { name: "Ada" });
    expect(hello.status).toBe(200);
    expect(hello.text).toBe("Hello Ada!\n");
    expect(hello.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect((await call("GET", `/r/${app}/echo?payload=a+b%21&payload=second`)).text).toBe("a b!");
    expect((await call("PUT", `/r/${app}/echo`, "ignored")).text).toBe("");
    expect((await call("POST", `/r/${app}/echo`, "")).headers.get("content-type")).toBeNull();
    expect((await call("POST", `/r/${app}/echo`, '{"a":1}')).headers.get("content-type")).toBe(
      "text/plain; charset=utf-8",
    );
    expect((await call("POST", `/r/${app}/echo`, "<html><body>hi")).headers.get("content-type")).toBe(
      "text/html; charset=utf-8",
    );
    const bin = await call("GET", `/r/${app}/bytes?payload=700`);
    expect(bin.headers.get("content-type")).toBe("application/octet-stream");
    expect(bin.text.length).toBe(700);
    const typed = await call("POST", `/r/${app}/json`, "[1]");
    expect(typed.headers.get("content-type")).toBe("application/json");
  });

  it("gives the function exactly the documented environment", async () => {
    const r = await call("POST", `/r/${app}/env?x=1&y=%20`, "", { "X-Custom": "v", "Accept-Language": "en" });
    const env = r.json as Record<string, string>;
    expect(env.METHOD).toBe("OVERRIDDEN");
    expect(env.ROUTE).toBe("/env");
    expect(env.REQUEST_URL).toBe(`http//127.0.0.1:${fn.port}/r/${app}/env?x=1&y=%20`);
    expect(env.APP_ONLY).toBe("a");
    expect(env.SHARED).toBe("route");
    expect(env.DASH_KEY).toBe("d");
    expect(env.HEADER_X_CUSTOM).toBe("v");
    expect(env.HEADER_ACCEPT_LANGUAGE).toBe("en");
    expect(env.HEADER_HOST).toBeUndefined();
    expect(env.HEADER_TRANSFER_ENCODING).toBeUndefined();
    for (const k of Object.keys(env)) {
      expect(
        ["METHOD", "ROUTE", "REQUEST_URL", "PATH", "APP_ONLY", "SHARED", "DASH_KEY"].includes(k) ||
          k.startsWith("HEADER_"),
        k,
      ).toBe(true);
    }
    const plain = (await call("GET", `/r/${app}/plainenv`)).json as Record<string, string>;
    expect(plain.METHOD).toBe("GET");

    const joined = await raw("GET", `/r/${app}/plainenv`, undefined, { "X-Multi": "one" });
    expect(JSON.parse(joined.body as string).HEADER_X_MULTI).toBe("one");
    const inv = fn.invocations.filter((i) => i.path === "/plainenv").at(-1);
    expect(inv?.env.HEADER_X_MULTI).toBe("one");
    expect(inv?.env.PATH).toBeUndefined();
    expect(inv?.status).toBe("success");
  });

  it("joins repeated request headers with a space", async () => {
    const res = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${fn.url}/r/${app}/plainenv`, { agent: false }, (r) => {
        let body = "";
        r.on("data", (d: Buffer) => {
          body += d.toString();
        });
        r.on("end", () => resolve(body));
      });
      req.on("error", reject);
      req.setHeader("X-Rep", ["a", "b"]);
      req.end();
    });
    expect(JSON.parse(res).HEADER_X_REP).toBe("a b");
  });

  it("maps exit codes, OOM, timeouts and missing images to the real errors", async () => {
    const fail = await call("GET", `/r/${app}/fail`);
    expect(fail.status).toBe(500);
    expect(fail.json.error).toEqual({ message: "exit code 3" });
    expect(fail.json.request_id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(fail.headers.get("x-route")).toBe("r1");
    expect((await call("GET", `/r/${app}/oom`)).json.error.message).toBe("out of memory error");
    const started = Date.now();
    const slow = await call("GET", `/r/${app}/slow`);
    expect(slow.status).toBe(504);
    expect(slow.json.error.message).toBe("Timed out");
    expect(Date.now() - started).toBeLessThan(3000);
    const ghost = await call("GET", `/r/${app}/ghost`);
    expect(ghost.status).toBe(500);
    expect(ghost.json.error.message).toContain("image not found");
  });

  it("derives request ids from remote address, path and second", async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await raw("GET", `/r/${app}/fail`);
    const after = Math.floor(Date.now() / 1000);
    const id = JSON.parse(r.body as string).request_id;
    const candidates = [before, after].map((s) =>
      uuidV5(Buffer.from(`127.0.0.1:${r.localPort}/r/${app}/fail${s}`)),
    );
    expect(candidates).toContain(id);
    // Cross-checked against Python's uuid.uuid5(uuid.UUID(int=0), name).
    expect(uuidV5(Buffer.from("127.0.0.1:5000/r/app/x1700000000"))).toBe(
      "8c443367-0174-5e78-ae65-c430524e1881",
    );
  });

  it("streams the request body in and stdout out", async () => {
    const size = 3 * 1024 * 1024;
    const data = Buffer.alloc(size, 7);
    const sha = await call("POST", `/r/${app}/sha`, data.toString("latin1"));
    expect(sha.text.trim()).toBe(createHash("sha256").update(data.toString("latin1"), "utf8").digest("hex"));

    // Part of the output must arrive while the request body is still open.
    const first = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${fn.url}/r/${app}/echo`, { method: "POST", agent: false }, (res) => {
        res.once("data", (d: Buffer) => {
          resolve(d.toString());
          req.end();
          res.resume();
        });
      });
      req.on("error", reject);
      req.flushHeaders();
      req.write("x".repeat(600));
    });
    expect(first.length).toBeGreaterThanOrEqual(512);
  });

  it("checks route jwt_key tokens like jwt-go", async () => {
    const key = "route-secret";
    await createRoute(app, { path: "/secure", image: "hello", jwt_key: key });
    const none = await call("GET", `/r/${app}/secure`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm=""');
    const sign = (alg: string, exp: string | number = "1m", k = key) =>
      new SignJWT({}).setProtectedHeader({ alg }).setExpirationTime(exp).sign(new TextEncoder().encode(k));
    for (const alg of ["HS256", "HS384", "HS512"]) {
      const token = await sign(alg);
      expect(
        (await call("GET", `/r/${app}/secure`, undefined, { Authorization: `Bearer ${token}` })).status,
      ).toBe(200);
    }
    const bare = await sign("HS256");
    expect((await call("GET", `/r/${app}/secure`, undefined, { Authorization: bare })).status).toBe(200);
    const wrong = await sign("HS256", "1m", "other-key");
    expect(
      (await call("GET", `/r/${app}/secure`, undefined, { Authorization: `Bearer ${wrong}` })).json.error
        .message,
    ).toBe("signature is invalid");
    const expired = await sign("HS256", Math.floor(Date.now() / 1000) - 10);
    const exp = await call("GET", `/r/${app}/secure`, undefined, { Authorization: `Bearer ${expired}` });
    expect(exp.status).toBe(401);
    expect(exp.json.error.message).toMatch(/^token is expired by \d+s$/);
  });

  it("queues async calls and runs them in the background", async () => {
    await createRoute(app, { path: "/bg", image: "env", type: "async" });
    const r = await call("POST", `/r/${app}/bg?z=1`, "payload-bytes");
    expect(r.status).toBe(202);
    const callId = r.json.call_id as string;
    expect(Object.keys(r.json)).toEqual(["call_id"]);
    const inv = await fn.waitForInvocation((i) => i.id === callId && i.type === "async", 5000);
    expect(inv.status).toBe("success");
    expect(inv.stdinBytes).toBe("payload-bytes".length);
    expect(JSON.parse(inv.stdout).ROUTE).toBe("/bg");
    expect(inv.env.METHOD).toBe("POST");
  });

  it("lets GET /tasks steal a queued async task", async () => {
    const slowQueue = await startFakeIronFunctions({ asyncDelayMs: 60_000 });
    try {
      await fetch(`${slowQueue.apiUrl}/apps/q/routes`, {
        method: "POST",
        body: JSON.stringify({ route: { path: "/bg", image: "echo", type: "async" } }),
      });
      const queued = (await (await fetch(`${slowQueue.url}/r/q/bg?payload=hi`)).json()) as {
        call_id: string;
      };
      const taken = await fetch(`${slowQueue.url}/tasks`);
      expect(taken.status).toBe(202);
      const task = (await taken.json()) as Record<string, unknown>;
      expect(task).toMatchObject({
        id: queued.call_id,
        app_name: "q",
        path: "/bg",
        image: "echo",
        payload: "hi",
      });
      expect(slowQueue.invocations[0]?.status).toBe("stolen");
      expect(await (await fetch(`${slowQueue.url}/tasks`)).text()).toBe("null\n");
    } finally {
      await slowQueue.stop();
    }
  });

  it("records invocations", async () => {
    fn.clearInvocations();
    await call("POST", `/r/${app}/echo`, "12345", { "X-Trace": "t" });
    const [inv] = fn.invocations;
    expect(inv).toMatchObject({
      app,
      path: "/echo",
      method: "POST",
      stdinBytes: 5,
      stdoutBytes: 5,
      status: "success",
    });
    expect(inv?.headers["x-trace"]).toEqual(["t"]);
  });
});

describe("hot functions (format: http)", () => {
  const app = uniq("hot");

  it("reuses a process while idle_timeout allows and frames requests as HTTP", async () => {
    await createRoute(app, { path: "/keep", image: "hot-echo", format: "http", idle_timeout: 5 });
    const one = (await call("POST", `/r/${app}/keep`, "first", { "X-A": "1" })).json;
    const two = (await call("GET", `/r/${app}/keep?payload=second`)).json;
    expect(one.requestLine).toBe("GET / HTTP/1.1");
    expect(one.body).toBe("first");
    expect(one.headers.method).toBe("POST");
    expect(one.headers.header_x_a).toBe("1");
    expect(one.headers["task-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(one.headers["content-length"]).toBe("5");
    expect(two.body).toBe("second");
    expect(two.pid).toBe(one.pid);
    expect(two.served).toBe(2);
  });

  it("uses a fresh process per call with idle_timeout 0 and times out with a 500", async () => {
    await createRoute(app, { path: "/cold", image: "hot-echo", format: "http" });
    const a = (await call("GET", `/r/${app}/cold`)).json;
    const b = (await call("GET", `/r/${app}/cold`)).json;
    expect(a.served).toBe(1);
    expect(b.served).toBe(1);
    expect(a.pid).not.toBe(b.pid);
    await createRoute(app, { path: "/mute", image: "sleep", format: "http", timeout: 1, idle_timeout: 5 });
    const mute = await call("GET", `/r/${app}/mute`);
    expect(mute.status).toBe(500);
    expect(mute.json.error.message).toBe("Timed out");
  });
});

describe("test controls", () => {
  it("keeps state across stop and restart on the same port", async () => {
    const name = uniq("persist");
    await call("POST", "/v1/apps", { app: { name } });
    const port = fn.port;
    await fn.stop();
    expect((await raw("GET", "/v1/apps")).error).toBeDefined();
    await fn.restart();
    expect(fn.port).toBe(port);
    expect((await call("GET", `/v1/apps/${name}`)).status).toBe(200);
  });

  it("logs requests and snapshots state as copies", async () => {
    fn.clearRequests();
    await call("GET", "/v1/apps?probe=1", undefined, { "X-Probe": "yes" });
    expect(fn.requests).toHaveLength(1);
    expect(fn.requests[0]).toMatchObject({ method: "GET", path: "/v1/apps?probe=1" });
    expect(fn.requests[0]?.headers["x-probe"]).toBe("yes");
    const snap = fn.apps();
    const first = snap[0];
    if (first) first.name = "mutated";
    expect(fn.apps()[0]?.name).not.toBe("mutated");
  });

  it("injects faults", async () => {
    fn.setFault({ kind: "status", status: 503, message: "maintenance" });
    const s = await call("GET", "/v1/apps");
    expect(s.status).toBe(503);
    expect(s.json).toEqual({ error: { message: "maintenance" } });
    expect((await call("GET", "/version")).status).toBe(200);

    fn.setFault({ kind: "delay", ms: 300 });
    const t0 = Date.now();
    expect((await call("GET", "/v1/apps")).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);

    fn.setFault({ kind: "hang" });
    const hung = await fetch(`${fn.apiUrl}/apps`, { signal: AbortSignal.timeout(300) }).then(
      () => "answered",
      () => "hung",
    );
    expect(hung).toBe("hung");

    fn.setFault({ kind: "refuse-connections" });
    expect((await raw("GET", "/v1/apps")).error).toBeDefined();
    fn.setFault(null);
    expect((await raw("GET", "/v1/apps")).status).toBe(200);
  });
});

describe("Go emulation helpers", () => {
  it("matches path.Clean, sniffing and jwt-go details", () => {
    expect(cleanPath("/a//b/./c/..")).toBe("/a/b");
    expect(cleanPath("/x/")).toBe("/x");
    expect(detectContentType(Buffer.from(" <!DOCTYPE html><p>"))).toBe("text/html; charset=utf-8");
    expect(detectContentType(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(
      "image/png",
    );
    expect(checkJwt("", undefined)).toBeNull();
    expect(checkJwt("k", undefined)).toBe("no token present in request");
    expect(checkJwt("k", "Bearer a.b")).toBe("token contains an invalid number of segments");
  });
});
