/**
 * A function engine stand-in that is as cheap as possible, so the figures measure the proxies in
 * front of it: `/r/{app}/...` answers at once (no containers), and `/v1/apps...` keeps apps and
 * routes in memory with IronFunctions' shapes so Picasso's management API can mirror onto it.
 *
 *   node --import tsx bench/engine.ts   -> prints {"port": N} when listening on 127.0.0.1
 *
 * Invocation does not check that the app or route exists: the direct baseline must not pay for a
 * lookup the real engine does in Go, and every proxy reaches the same code.
 *   - `/r/{app}/upload`           consumes the body, answers {"bytes": N}
 *   - `/r/{app}/download?bytes=N` streams N bytes from one reused buffer, with backpressure
 *   - anything else               answers `ok`
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";

const okBody = Buffer.from("ok");
const okHeaders = { "content-type": "text/plain; charset=utf-8", "content-length": String(okBody.length) };
const downloadChunk = Buffer.alloc(1024 * 1024);

type EngineApp = { name: string; config: Record<string, string> };
type EngineRoute = {
  app_name: string;
  path: string;
  image: string;
  memory: number;
  type: string;
  format: string;
  timeout: number;
  idle_timeout: number;
  max_concurrency: number;
  headers: Record<string, string[]>;
  config: Record<string, string>;
};

const apps = new Map<string, { app: EngineApp; routes: Map<string, EngineRoute> }>();

function invoke(req: IncomingMessage, res: ServerResponse, url: string): void {
  const queryStart = url.indexOf("?");
  const path = queryStart === -1 ? url : url.slice(0, queryStart);
  if (path.endsWith("/upload")) {
    upload(req, res);
  } else if (path.endsWith("/download")) {
    const bytes = Number(new URLSearchParams(url.slice(queryStart + 1)).get("bytes") ?? "0");
    download(req, res, Number.isSafeInteger(bytes) && bytes > 0 ? bytes : 0);
  } else {
    req.resume();
    res.writeHead(200, okHeaders);
    res.end(okBody);
  }
}

function upload(req: IncomingMessage, res: ServerResponse): void {
  let bytes = 0;
  req.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
  });
  req.on("end", () => {
    const body = JSON.stringify({ bytes });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
}

function download(req: IncomingMessage, res: ServerResponse, bytes: number): void {
  req.resume();
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(bytes) });
  let left = bytes;
  let closed = false;
  res.on("close", () => {
    closed = true;
  });
  const pump = () => {
    while (left > 0 && !closed) {
      const size = Math.min(left, downloadChunk.length);
      left -= size;
      const more = res.write(size === downloadChunk.length ? downloadChunk : downloadChunk.subarray(0, size));
      if (!more) {
        res.once("drain", pump);
        return;
      }
    }
    if (!closed) res.end();
  };
  pump();
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

const fail = (res: ServerResponse, status: number, message: string) =>
  send(res, status, { error: { message } });

function readJson(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      try {
        const value = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
        resolve(value && typeof value === "object" ? (value as Record<string, unknown>) : null);
      } catch {
        resolve(null);
      }
    });
  });
}

function newRoute(appName: string, input: Record<string, unknown>): EngineRoute {
  return {
    app_name: appName,
    path: String(input.path),
    image: String(input.image ?? ""),
    memory: typeof input.memory === "number" && input.memory > 0 ? input.memory : 128,
    type: input.type === "async" ? "async" : "sync",
    format: input.format === "http" ? "http" : "default",
    timeout: typeof input.timeout === "number" && input.timeout > 0 ? input.timeout : 30,
    idle_timeout: typeof input.idle_timeout === "number" ? input.idle_timeout : 0,
    max_concurrency: typeof input.max_concurrency === "number" ? input.max_concurrency : 1,
    headers: (input.headers as Record<string, string[]>) ?? {},
    config: (input.config as Record<string, string>) ?? {},
  };
}

function mergeConfig(target: Record<string, string>, changes: Record<string, string>): void {
  for (const [key, value] of Object.entries(changes)) {
    if (value === "") delete target[key];
    else target[key] = value;
  }
}

/** Enough of IronFunctions' /v1 API (BEHAVIOUR.md) for Picasso's driver; no validation beyond it. */
async function manage(req: IncomingMessage, res: ServerResponse, url: string): Promise<void> {
  const path = url.split("?")[0] ?? "";
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const method = req.method ?? "GET";
  // ["v1", "apps", app?, "routes"?, ...route path segments]
  if (parts[1] !== "apps") return fail(res, 404, "Not Found");
  const appName = parts[2];
  if (appName === undefined) {
    if (method === "GET") {
      const list = [...apps.values()].map((entry) => entry.app).sort((a, b) => (a.name < b.name ? -1 : 1));
      return send(res, 200, { message: "Successfully listed applications", apps: list });
    }
    if (method !== "POST") return fail(res, 405, "Method not allowed");
    const body = await readJson(req);
    const input = body?.app as Record<string, unknown> | undefined;
    if (!input || typeof input.name !== "string") return fail(res, 400, "Missing new application");
    if (apps.has(input.name)) return fail(res, 409, "App already exists");
    const app = { name: input.name, config: (input.config as Record<string, string>) ?? {} };
    apps.set(app.name, { app, routes: new Map() });
    return send(res, 200, { message: "App successfully created", app });
  }
  const entry = apps.get(appName);
  if (parts[3] === undefined) {
    if (method === "GET") {
      return entry
        ? send(res, 200, { message: "Successfully loaded app", app: entry.app })
        : fail(res, 404, "App not found");
    }
    if (method === "PATCH") {
      if (!entry) return fail(res, 404, "App not found");
      const body = await readJson(req);
      mergeConfig(
        entry.app.config,
        ((body?.app as Record<string, unknown>)?.config as Record<string, string>) ?? {},
      );
      return send(res, 200, { message: "App successfully updated", app: entry.app });
    }
    if (method === "DELETE") {
      if (!entry) return fail(res, 404, "App not found");
      if (entry.routes.size > 0) return fail(res, 400, "Cannot remove apps with routes");
      apps.delete(appName);
      return send(res, 200, { message: "App deleted" });
    }
    return fail(res, 405, "Method not allowed");
  }
  if (parts[3] !== "routes") return fail(res, 404, "Not Found");
  const routePath = parts.length > 4 ? `/${parts.slice(4).join("/")}` : undefined;
  if (routePath === undefined) {
    if (method === "GET") {
      const routes = entry ? [...entry.routes.values()].sort((a, b) => (a.path < b.path ? 1 : -1)) : [];
      return send(res, 200, { message: "Successfully listed routes", routes });
    }
    if (method !== "POST") return fail(res, 405, "Method not allowed");
    const body = await readJson(req);
    const input = body?.route as Record<string, unknown> | undefined;
    if (!input || typeof input.path !== "string") return fail(res, 400, "Missing new route");
    // Like the real server: creating a route creates its app.
    const target = entry ?? { app: { name: appName, config: {} }, routes: new Map<string, EngineRoute>() };
    apps.set(appName, target);
    if (target.routes.has(input.path)) return fail(res, 409, "Route already exists");
    const route = newRoute(appName, input);
    target.routes.set(route.path, route);
    return send(res, 200, { message: "Route successfully created", route });
  }
  const route = entry?.routes.get(routePath);
  if (method === "GET") {
    return route
      ? send(res, 200, { message: "Successfully loaded route", route })
      : fail(res, 404, "Route not found");
  }
  if (method === "PATCH") {
    if (!entry || !route) return fail(res, 404, "Route not found");
    const body = await readJson(req);
    const input = (body?.route as Record<string, unknown>) ?? {};
    const { config, headers, path: _path, ...rest } = input;
    Object.assign(route, Object.fromEntries(Object.entries(rest).filter(([, value]) => value)));
    mergeConfig(route.config, (config as Record<string, string>) ?? {});
    Object.assign(route.headers, (headers as Record<string, string[]>) ?? {});
    return send(res, 200, { message: "Route successfully updated", route });
  }
  if (method === "DELETE") {
    if (!entry) return fail(res, 404, "App not found");
    entry.routes.delete(routePath);
    return send(res, 200, { message: "Route deleted" });
  }
  return fail(res, 405, "Method not allowed");
}

const server = http.createServer((req, res) => {
  const url = req.url ?? "/";
  if (url.startsWith("/r/")) return invoke(req, res, url);
  if (url.startsWith("/v1/")) {
    manage(req, res, url).catch(() => fail(res, 500, "stand-in failure"));
    return;
  }
  req.resume();
  if (url === "/version") return send(res, 200, { version: "0.2.72" });
  if (url === "/") return send(res, 200, { goto: "https://github.com/iron-io/functions", hello: "world!" });
  return send(res, 404, "Not Found");
});
// Proxies keep idle upstream connections; closing them first would race their reuse (ECONNRESET).
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;
// A 1 GiB upload through a slow proxy must not hit Node's 5 minute request timeout.
server.requestTimeout = 0;

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 })}\n`,
  );
});

// The harness holds our stdin; when it goes away, so do we.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
process.on("SIGTERM", () => process.exit(0));
