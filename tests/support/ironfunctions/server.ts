// An IronFunctions 0.2.72 stand-in for Picasso's tests and benchmarks.
//
// It follows BEHAVIOUR.md in the shared IronFunctions reference (observed
// behaviour of the real server), which wins over the upstream swagger file.
// Apps and routes live in memory; functions run as real local processes
// (see runner.ts for the image -> executable mapping).
//
// Deliberate deviations from the real server:
// - Sync `format: default` calls stream: the request body is piped into the
//   process as it arrives, and stdout is sent on once 512 bytes (enough to
//   sniff a Content-Type) have been collected or the process has ended. The
//   real server buffers everything. So a function that has already written
//   more than 512 bytes and then fails or times out cannot get its 500/504
//   any more: the fake drops the connection instead. Bodies of 512-2048
//   bytes also go out chunked where Go would send a Content-Length.
// - Hot functions (`format: http`) with `idle_timeout` 0 are a race on the
//   real server (answered by a fresh container, or never, and after two
//   lost calls every function call hangs). The fake always takes the good
//   branch: a fresh process per call, killed after answering. With
//   `idle_timeout` > 0 processes are reused up to `max_concurrency`.
// - No image pull: images are never checked at route create/update; an
//   image with no executable fails at call time with a 500 like a pull
//   failure. `memory` is stored but not enforced (no OOM unless the process
//   dies from SIGKILL itself), and the runner's "queue full" 500 never happens.
// - The process env is exactly the function env plus PATH (a container
//   would also carry its image's ENV).
// - Async tasks are picked up `asyncDelayMs` after being queued (the real
//   async runner polls its own /tasks once a second when idle) and run one at
//   a time, as the real runner does. `DELETE /tasks` is only acknowledged.
// - `GET /stats` is not provided.
// - Node answers keep-alive requests with `Connection: keep-alive`, which Go
//   does not send; no other header is added. Node's HTTP parser is stricter
//   than Go's in places (e.g. 16 KiB of headers at most).

import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { fileURLToPath } from "node:url";
import {
  asHeaderMap,
  asInt32,
  asInt64,
  asString,
  asStringMap,
  asUint64,
  byteCompare,
  canonicalHeaderKey,
  cleanPath,
  decodeFirstValue,
  detectContentType,
  escapedPath,
  fieldFor,
  GoJsonError,
  goUrlPath,
  type JNode,
  jmap,
  jstr,
  jstrList,
  percentDecode,
  uuidV5,
} from "./go.ts";
import { checkJwt } from "./jwt.ts";
import { HotPool, HotProcess, imagePullError, resolveImage, runCold, safeEnv } from "./runner.ts";

export interface FakeIronFunctionsOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Emulates the server's JWT_AUTH_KEY setting: every /v1 call then needs a token. */
  jwtAuthKey?: string;
  /** Where image executables live. Default tests/fixtures/functions. */
  functionsDir?: string;
  /** Delay before a queued async task is taken and run. Default 10 ms. */
  asyncDelayMs?: number;
}

/** Which requests a fault applies to: /v1 calls, /r/ calls, or every request. */
export type FaultScope = "v1" | "r" | "all";

export type Fault =
  | { kind: "refuse-connections" }
  | { kind: "status"; status: 500 | 503; message: string; scope?: FaultScope /* default v1 */ }
  | { kind: "delay"; ms: number; scope?: FaultScope /* default v1 */ }
  | { kind: "hang"; scope?: FaultScope /* default all */ };

export interface RequestLogEntry {
  method: string;
  /** Raw request target: path and query as sent. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  at: number;
}

export type InvocationStatus = "queued" | "running" | "success" | "error" | "timeout" | "stolen";

export interface Invocation {
  /** request_id / call_id the server reported (not unique, see BEHAVIOUR.md). */
  id: string;
  app: string;
  /** Stored route path. */
  path: string;
  /** Request target as sent (/r/app/...?...). */
  url: string;
  method: string;
  type: "sync" | "async";
  format: string;
  image: string;
  /** Request headers as received, lower-cased names. */
  headers: Record<string, string[]>;
  /** The function env (no PATH); for hot functions, the env of this call. */
  env: Record<string, string>;
  stdinBytes: number;
  status: InvocationStatus;
  /** HTTP status the caller got (202 for async). */
  httpStatus?: number;
  exitCode?: number;
  error?: string;
  stdoutBytes: number;
  /** Start of stdout: 64 KiB for async calls (whose output is otherwise only logged), 4 KiB for sync. */
  stdout: string;
  stderr: string;
  queuedAt: number;
  startedAt?: number;
  finishedAt?: number;
}

export interface AppSnapshot {
  name: string;
  config: Record<string, string> | null;
}

export interface RouteSnapshot {
  app_name: string;
  path: string;
  image: string;
  memory: number;
  headers: Record<string, string[] | null>;
  type: string;
  format: string;
  max_concurrency: number;
  timeout: number;
  idle_timeout: number;
  config: Record<string, string>;
  jwt_key: string;
}

export interface FakeIronFunctions {
  readonly url: string;
  readonly apiUrl: string;
  readonly port: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
  apps(): AppSnapshot[];
  routes(appName: string): RouteSnapshot[];
  readonly requests: RequestLogEntry[];
  clearRequests(): void;
  readonly invocations: Invocation[];
  clearInvocations(): void;
  /** Resolves with the first finished invocation (not queued/running) matching `predicate`. */
  waitForInvocation(predicate: (inv: Invocation) => boolean, timeoutMs?: number): Promise<Invocation>;
  setFault(fault: Fault | null): void;
}

export async function startFakeIronFunctions(
  opts: FakeIronFunctionsOptions = {},
): Promise<FakeIronFunctions> {
  const fake = new FakeServer(opts);
  await fake.listen(opts.port ?? 0);
  return fake;
}

// ---------------------------------------------------------------------------
// State and wire shapes
// ---------------------------------------------------------------------------

interface RouteState {
  appName: string;
  path: string;
  image: string;
  memory: number;
  headers: Map<string, string[] | null>;
  type: string;
  format: string;
  maxConcurrency: number;
  timeout: number;
  idleTimeout: number;
  config: Map<string, string>;
  jwtKey: string;
}

interface AppState {
  name: string;
  config: Map<string, string> | null;
  routes: Map<string, RouteState>;
}

interface RouteInput {
  appName: string;
  path: string;
  image: string;
  memory: number;
  headers: Map<string, string[] | null> | null;
  type: string;
  format: string;
  maxConcurrency: number;
  timeout: number;
  idleTimeout: number;
  config: Map<string, string> | null;
  jwtKey: string;
}

interface AppInput {
  name: string;
  config: Map<string, string> | null;
}

interface QueuedTask {
  id: string;
  app: string;
  path: string;
  image: string;
  env: Record<string, string>;
  payload: Buffer;
  record: Invocation;
}

const VERSION = "0.2.72";
// Bounded so that benchmarks can run the server for long without growing it.
const MAX_REQUEST_LOG = 100_000;
const MAX_INVOCATION_LOG = 10_000;
const SYNC_CAPTURE = 4 * 1024;
const ASYNC_CAPTURE = 64 * 1024;
const SNIFF_LEN = 512;
const ASYNC_TIMEOUT_S = 30;

const APP_FIELDS = ["name", "config"] as const;
const ROUTE_FIELDS = [
  "app_name",
  "path",
  "image",
  "memory",
  "headers",
  "type",
  "format",
  "max_concurrency",
  "timeout",
  "idle_timeout",
  "config",
  "jwt_key",
] as const;
const ERROR_BODY_FIELDS = ["message", "fields"] as const;

// The wrappers' optional `error` member is an *ErrorBody: it must still type-check.
function checkErrorBody(n: JNode): void {
  if (n.t === "null") return;
  if (n.t !== "obj") throw new GoJsonError("type");
  for (const [k, v] of n.entries) if (fieldFor(k, ERROR_BODY_FIELDS)) asString(v, "");
}

function decodeApp(n: JNode, cur: AppInput | null): AppInput | null {
  if (n.t === "null") return null;
  if (n.t !== "obj") throw new GoJsonError("type");
  const app = cur ?? { name: "", config: null };
  for (const [k, v] of n.entries) {
    const f = fieldFor(k, APP_FIELDS);
    if (f === "name") app.name = asString(v, app.name);
    else if (f === "config") app.config = asStringMap(v, app.config);
  }
  return app;
}

function emptyRouteInput(): RouteInput {
  return {
    appName: "",
    path: "",
    image: "",
    memory: 0,
    headers: null,
    type: "",
    format: "",
    maxConcurrency: 0,
    timeout: 0,
    idleTimeout: 0,
    config: null,
    jwtKey: "",
  };
}

function decodeRoute(n: JNode, cur: RouteInput | null): RouteInput | null {
  if (n.t === "null") return null;
  if (n.t !== "obj") throw new GoJsonError("type");
  const r = cur ?? emptyRouteInput();
  for (const [k, v] of n.entries) {
    switch (fieldFor(k, ROUTE_FIELDS)) {
      case "app_name":
        r.appName = asString(v, r.appName);
        break;
      case "path":
        r.path = asString(v, r.path);
        break;
      case "image":
        r.image = asString(v, r.image);
        break;
      case "memory":
        r.memory = asUint64(v, r.memory);
        break;
      case "headers":
        r.headers = asHeaderMap(v, r.headers);
        break;
      case "type":
        r.type = asString(v, r.type);
        break;
      case "format":
        r.format = asString(v, r.format);
        break;
      case "max_concurrency":
        r.maxConcurrency = asInt64(v, r.maxConcurrency);
        break;
      case "timeout":
        r.timeout = asInt32(v, r.timeout);
        break;
      case "idle_timeout":
        r.idleTimeout = asInt32(v, r.idleTimeout);
        break;
      case "config":
        r.config = asStringMap(v, r.config);
        break;
      case "jwt_key":
        r.jwtKey = asString(v, r.jwtKey);
        break;
    }
  }
  return r;
}

/** Decodes `{"<member>": {...}}` leniently like gin's BindJSON; throws GoJsonError for "Invalid JSON". */
function decodeWrapper<T>(
  body: Buffer,
  member: string,
  decodeMember: (n: JNode, cur: T | null) => T | null,
  allowMessage: boolean,
): T | null {
  const root = decodeFirstValue(body.toString("utf8"));
  if (root.t === "null") return null;
  if (root.t !== "obj") throw new GoJsonError("type");
  const fields = allowMessage ? [member, "error", "message"] : [member, "error"];
  let out: T | null = null;
  for (const [k, v] of root.entries) {
    const f = fieldFor(k, fields);
    if (f === member) out = decodeMember(v, out);
    else if (f === "error") checkErrorBody(v);
    else if (f === "message") asString(v, "");
  }
  return out;
}

function encApp(a: AppState): string {
  return `{"name":${jstr(a.name)},"config":${jmap(a.config, jstr)}}`;
}

function encRoute(r: RouteState): string {
  return (
    `{"app_name":${jstr(r.appName)},"path":${jstr(r.path)},"image":${jstr(r.image)},"memory":${r.memory},` +
    `"headers":${jmap(r.headers, jstrList)},"type":${jstr(r.type)},"format":${jstr(r.format)},` +
    `"max_concurrency":${r.maxConcurrency},"timeout":${r.timeout},"idle_timeout":${r.idleTimeout},` +
    `"config":${jmap(r.config, jstr)},"jwt_key":${jstr(r.jwtKey)}}`
  );
}

const errBody = (message: string) => `{"error":{"message":${jstr(message)}}}`;
const runErrBody = (id: string, message: string) =>
  `{"request_id":${jstr(id)},"error":{"message":${jstr(message)}}}`;

function appNameError(name: string): string | null {
  if (name === "") return "Missing app name";
  if (Buffer.byteLength(name, "utf8") > 30) return "App name must be 30 characters or less";
  // The real check is broken: it only rejects code points below 'Z' that are
  // neither digits nor '-'. Emulated as is (see BEHAVIOUR.md).
  for (const ch of name) {
    const c = ch.codePointAt(0) as number;
    if (c < 0x5a && !(c >= 0x30 && c <= 0x39) && c !== 0x2d) return "Invalid app name";
  }
  return null;
}

/** Route.Validate; "crash" where the real server dereferences a nil *url.URL. */
function validateRoute(r: RouteInput, skipZero: boolean): string[] | "crash" {
  const res: string[] = [];
  if (!skipZero) {
    if (r.appName === "") res.push("Missing route AppName");
    if (r.image === "") res.push("Missing route Image");
    if (r.path === "") res.push("Missing route Path");
  }
  if (!skipZero || r.path !== "") {
    const u = goUrlPath(r.path);
    if ("error" in u) return "crash";
    if (u.path.includes(":")) res.push("Dynamic URL is not allowed");
    if (!u.path.startsWith("/")) res.push("Invalid Path format");
  }
  if ((!skipZero || r.type !== "") && r.type !== "sync" && r.type !== "async") res.push("Invalid route Type");
  if ((!skipZero || r.format !== "") && r.format !== "default" && r.format !== "http") {
    res.push("Invalid route Format");
  }
  if (r.maxConcurrency < 0) res.push("Negative MaxConcurrency");
  if (r.timeout < 0) res.push("Negative timeout");
  if (r.idleTimeout < 0) res.push("Negative idle timeout");
  return res;
}

const wrapValidation = (errs: string[]) =>
  `validation failure list:\nvalidation failure list:\n${errs.join("\n")}`;

function groupHeaders(req: IncomingMessage): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = canonicalHeaderKey(raw[i] as string);
    const list = out.get(key);
    if (list) list.push(raw[i + 1] as string);
    else out.set(key, [raw[i + 1] as string]);
  }
  return out;
}

/** url.Values.Get("payload") on the raw query, as bytes. */
function queryValue(rawQuery: string, name: string): Buffer | null {
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawKey = eq >= 0 ? part.slice(0, eq) : part;
    if (rawKey.includes(";")) continue;
    const key = percentDecode(rawKey, true);
    if (key === null) continue;
    const value = percentDecode(eq >= 0 ? part.slice(eq + 1) : "", true);
    if (value === null) continue;
    if (key.toString("utf8") === name) return value;
  }
  return null;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Keeps the first `limit` bytes of a stream, decoded once at the end. */
class Capture {
  private chunks: Buffer[] = [];
  private len = 0;
  constructor(private readonly limit: number) {}
  add(chunk: Buffer): void {
    if (this.len >= this.limit) return;
    const part = chunk.subarray(0, this.limit - this.len);
    this.chunks.push(part);
    this.len += part.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const ANY = ["GET", "POST", "PUT", "PATCH", "HEAD", "OPTIONS", "DELETE", "CONNECT", "TRACE"];

type Handler =
  | "ping"
  | "version"
  | "tasks"
  | "appList"
  | "appCreate"
  | "appGet"
  | "appUpdate"
  | "appDelete"
  | "allRoutes"
  | "routeList"
  | "routeCreate"
  | "routeGet"
  | "routeUpdate"
  | "routeDelete"
  | "run";

// The real router (gin/httprouter): a parameter at the end of a pattern must
// be non-empty, one in the middle may be empty (and then the handler panics).
const ROUTER: [string[], RegExp, Handler][] = [
  [["GET"], /^\/$/, "ping"],
  [["GET"], /^\/version$/, "version"],
  [["GET", "DELETE"], /^\/tasks$/, "tasks"],
  [["GET"], /^\/v1\/apps$/, "appList"],
  [["POST"], /^\/v1\/apps$/, "appCreate"],
  [["GET"], /^\/v1\/apps\/([^/]+)$/, "appGet"],
  [["PATCH"], /^\/v1\/apps\/([^/]+)$/, "appUpdate"],
  [["DELETE"], /^\/v1\/apps\/([^/]+)$/, "appDelete"],
  [["GET"], /^\/v1\/routes$/, "allRoutes"],
  [["GET"], /^\/v1\/apps\/([^/]*)\/routes$/, "routeList"],
  [["POST"], /^\/v1\/apps\/([^/]*)\/routes$/, "routeCreate"],
  [["GET"], /^\/v1\/apps\/([^/]*)\/routes(\/.*)$/, "routeGet"],
  [["PATCH"], /^\/v1\/apps\/([^/]*)\/routes(\/.*)$/, "routeUpdate"],
  [["DELETE"], /^\/v1\/apps\/([^/]*)\/routes(\/.*)$/, "routeDelete"],
  [ANY, /^\/r\/([^/]*)(\/.*)$/, "run"],
];

function matchRoute(method: string, path: string): { handler: Handler; params: string[] } | null {
  for (const [methods, re, handler] of ROUTER) {
    if (!methods.includes(method)) continue;
    const m = re.exec(path);
    if (m) return { handler, params: m.slice(1) };
  }
  return null;
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  rawPath: string;
  rawQuery: string;
  path: string;
  pathBytes: Buffer;
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

class FakeServer implements FakeIronFunctions {
  private readonly server: Server;
  private readonly host: string;
  private readonly jwtAuthKey: string;
  private readonly functionsDir: string;
  private readonly asyncDelayMs: number;
  private readonly sockets = new Set<Socket>();
  private readonly state = new Map<string, AppState>();
  private readonly requestLog: RequestLogEntry[] = [];
  private readonly invocationLog: Invocation[] = [];
  private readonly events = new EventEmitter();
  private readonly running = new Set<{ kill(): void }>();
  private readonly hotPools = new Map<string, HotPool>();
  private readonly asyncQueue: QueuedTask[] = [];
  private asyncBusy = false;
  private asyncTimer: NodeJS.Timeout | undefined;
  private fault: Fault | null = null;
  private stopped = true;
  private boundPort = 0;

  constructor(opts: FakeIronFunctionsOptions) {
    this.host = opts.host ?? "127.0.0.1";
    this.jwtAuthKey = opts.jwtAuthKey ?? "";
    this.functionsDir =
      opts.functionsDir ?? fileURLToPath(new URL("../../fixtures/functions/", import.meta.url));
    this.asyncDelayMs = opts.asyncDelayMs ?? 10;
    this.events.setMaxListeners(0);
    this.server = createServer((req, res) => {
      this.onRequest(req, res).catch(() => {
        // A handler failure is a crash: the real server drops the connection too.
        req.socket.destroy();
      });
    });
    // Go's server has no idle timeout by default; 0 also stops Node from
    // advertising a `Keep-Alive:` header the real server never sends.
    this.server.keepAliveTimeout = 0;
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 0;
    this.server.on("connection", (socket: Socket) => {
      if (this.fault?.kind === "refuse-connections") {
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  get port(): number {
    return this.boundPort;
  }
  get url(): string {
    const h = this.host.includes(":") ? `[${this.host}]` : this.host;
    return `http://${h}:${this.boundPort}`;
  }
  get apiUrl(): string {
    return `${this.url}/v1`;
  }
  get requests(): RequestLogEntry[] {
    return this.requestLog;
  }
  get invocations(): Invocation[] {
    return this.invocationLog;
  }

  clearRequests(): void {
    this.requestLog.length = 0;
  }
  clearInvocations(): void {
    this.invocationLog.length = 0;
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen(port, this.host, () => {
        this.server.off("error", onError);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as AddressInfo).port;
    this.stopped = false;
    this.scheduleAsync();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.asyncTimer) clearTimeout(this.asyncTimer);
    this.asyncTimer = undefined;
    for (const r of this.running) r.kill();
    for (const pool of this.hotPools.values()) pool.killAll();
    this.hotPools.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.listen(this.boundPort);
  }

  apps(): AppSnapshot[] {
    return [...this.state.values()]
      .sort((a, b) => byteCompare(a.name, b.name))
      .map((a) => ({ name: a.name, config: a.config ? Object.fromEntries(a.config) : null }));
  }

  routes(appName: string): RouteSnapshot[] {
    const app = this.state.get(appName);
    if (!app) return [];
    return this.sortedRoutes(app).map((r) => ({
      app_name: r.appName,
      path: r.path,
      image: r.image,
      memory: r.memory,
      headers: Object.fromEntries([...r.headers].map(([k, v]) => [k, v ? [...v] : null])),
      type: r.type,
      format: r.format,
      max_concurrency: r.maxConcurrency,
      timeout: r.timeout,
      idle_timeout: r.idleTimeout,
      config: Object.fromEntries(r.config),
      jwt_key: r.jwtKey,
    }));
  }

  setFault(fault: Fault | null): void {
    this.fault = fault;
    if (fault?.kind === "refuse-connections") {
      for (const s of this.sockets) s.destroy();
    }
  }

  waitForInvocation(predicate: (inv: Invocation) => boolean, timeoutMs = 5000): Promise<Invocation> {
    const finished = (i: Invocation) => i.status !== "queued" && i.status !== "running" && predicate(i);
    const found = this.invocationLog.find(finished);
    if (found) return Promise.resolve(found);
    return new Promise<Invocation>((resolve, reject) => {
      const onFinish = (inv: Invocation) => {
        if (!finished(inv)) return;
        clearTimeout(timer);
        this.events.off("finish", onFinish);
        resolve(inv);
      };
      const timer = setTimeout(() => {
        this.events.off("finish", onFinish);
        reject(new Error(`no matching invocation finished within ${timeoutMs} ms`));
      }, timeoutMs);
      this.events.on("finish", onFinish);
    });
  }

  // -------------------------------------------------------------------------
  // Request entry point
  // -------------------------------------------------------------------------

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let target = req.url ?? "/";
    this.requestLog.push({
      method: req.method ?? "",
      path: target,
      headers: { ...req.headers },
      at: Date.now(),
    });
    if (this.requestLog.length > MAX_REQUEST_LOG) {
      this.requestLog.splice(0, this.requestLog.length - MAX_REQUEST_LOG);
    }

    if (this.fault?.kind === "refuse-connections") {
      req.socket.destroy();
      return;
    }
    const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?]*/.exec(target);
    if (abs) target = target.slice(abs[0].length) || "/";
    const q = target.indexOf("?");
    const rawPath = q >= 0 ? target.slice(0, q) : target;
    const rawQuery = q >= 0 ? target.slice(q + 1) : "";
    const pathBytes = percentDecode(rawPath, false);
    if (pathBytes === null) {
      // net/http refuses a request-URI it cannot parse before any handler runs.
      res.writeHead(400, { "Content-Type": "text/plain; charset=utf-8", Connection: "close" });
      res.end("400 Bad Request");
      return;
    }
    const ctx: Ctx = {
      req,
      res,
      method: req.method ?? "GET",
      rawPath,
      rawQuery,
      path: pathBytes.toString("utf8"),
      pathBytes,
    };

    const fault = this.fault;
    if (fault && this.inScope(fault, ctx.path)) {
      if (fault.kind === "hang") {
        req.resume();
        return;
      }
      if (fault.kind === "status") {
        req.resume();
        this.sendJson(res, fault.status, errBody(fault.message));
        return;
      }
      if (fault.kind === "delay") {
        await sleep(fault.ms);
        if (this.stopped || res.destroyed) return;
      }
    }
    await this.dispatch(ctx);
  }

  private inScope(fault: Fault, path: string): boolean {
    if (fault.kind === "refuse-connections") return true;
    const scope = fault.scope ?? (fault.kind === "hang" ? "all" : "v1");
    if (scope === "all") return true;
    if (scope === "v1") return path === "/v1" || path.startsWith("/v1/");
    return path.startsWith("/r/");
  }

  private async dispatch(ctx: Ctx): Promise<void> {
    const { req, res, method, path } = ctx;
    const m = matchRoute(method, path);
    if (!m) {
      // gin's RedirectTrailingSlash: only when the other spelling is routable for this method.
      const alt = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : `${path}/`;
      if (matchRoute(method, alt)) return this.redirect(ctx, alt);
      req.resume();
      return this.sendJson(res, 404, jstr("Not Found"));
    }
    const p0 = m.params[0] ?? "";
    const p1 = m.params[1] ?? "";
    if (m.handler !== "ping" && m.handler !== "version" && m.handler !== "tasks" && m.handler !== "run") {
      if (this.jwtAuthKey !== "" && checkJwt(this.jwtAuthKey, req.headers.authorization) !== null) {
        req.resume();
        // Written before the JSON with no Content-Type, so Go sniffs text/plain.
        res.writeHead(401, { "Content-Type": "text/plain; charset=utf-8" });
        res.end('{"error":"Invalid API Authorization token."}\n');
        return;
      }
    }
    switch (m.handler) {
      case "ping":
        return this.sendJson(res, 200, '{"goto":"https://github.com/iron-io/functions","hello":"world!"}');
      case "version":
        return this.sendJson(res, 200, `{"version":${jstr(VERSION)}}`);
      case "tasks":
        return this.handleTasks(ctx);
      case "appList":
        return this.sendJson(
          res,
          200,
          `{"message":"Successfully listed applications","apps":[${[...this.state.values()]
            .sort((a, b) => byteCompare(a.name, b.name))
            .map(encApp)
            .join(",")}]}`,
        );
      case "appCreate":
        return this.appCreate(ctx);
      case "appGet": {
        const app = this.state.get(p0);
        if (!app) return this.sendJson(res, 404, errBody("App not found"));
        return this.sendJson(res, 200, `{"message":"Successfully loaded app","app":${encApp(app)}}`);
      }
      case "appUpdate":
        return this.appUpdate(ctx, p0);
      case "appDelete":
        return this.appDelete(ctx, p0);
      case "allRoutes":
        return this.crash(ctx);
      case "routeList":
        return this.routeList(ctx, p0);
      case "routeCreate":
        return this.routeCreate(ctx, p0);
      case "routeGet":
        return this.routeGet(ctx, p0, p1);
      case "routeUpdate":
        return this.routeUpdate(ctx, p0, p1);
      case "routeDelete":
        return this.routeDelete(ctx, p0, p1);
      case "run":
        return this.run(ctx, p0, p1);
    }
  }

  // -------------------------------------------------------------------------
  // Response helpers
  // -------------------------------------------------------------------------

  private sendJson(res: ServerResponse, status: number, body: string): void {
    if (res.headersSent || res.destroyed) return;
    // gin of that era wrote JSON with json.Encoder: always a trailing newline.
    const buf = Buffer.from(`${body}\n`, "utf8");
    if (!res.hasHeader("Content-Type")) res.setHeader("Content-Type", "application/json; charset=utf-8");
    res.setHeader("Content-Length", buf.length);
    res.writeHead(status);
    res.end(buf);
  }

  private invalidJson(res: ServerResponse): void {
    // BindJSON has already written the 400 header when the handler writes its
    // JSON, so the Content-Type comes from sniffing.
    const buf = Buffer.from(`${errBody("Invalid JSON")}\n`);
    res.writeHead(400, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": buf.length });
    res.end(buf);
  }

  private crash(ctx: Ctx): void {
    ctx.req.socket.destroy();
  }

  private redirect(ctx: Ctx, altPath: string): void {
    const { req, res, method, rawPath, rawQuery } = ctx;
    const altRaw = altPath.endsWith("/") && !ctx.path.endsWith("/") ? `${rawPath}/` : rawPath.slice(0, -1);
    let loc = cleanPath(escapedPath(altRaw, altPath));
    if (altPath.endsWith("/") && !loc.endsWith("/")) loc += "/";
    if (rawQuery !== "") loc += `?${rawQuery}`;
    req.resume();
    if (method === "GET") {
      const body = `<a href="${htmlEscape(loc)}">Moved Permanently</a>.\n\n`;
      res.writeHead(301, { Location: loc, "Content-Type": "text/html; charset=utf-8" });
      res.end(body);
    } else {
      res.writeHead(307, { Location: loc });
      res.end();
    }
  }

  private sortedRoutes(app: AppState): RouteState[] {
    return [...app.routes.values()].sort((a, b) => byteCompare(b.path, a.path));
  }

  // -------------------------------------------------------------------------
  // Apps
  // -------------------------------------------------------------------------

  private async appCreate(ctx: Ctx): Promise<void> {
    const { req, res } = ctx;
    let input: AppInput | null;
    try {
      input = decodeWrapper(await readBody(req), "app", decodeApp, false);
    } catch {
      return this.invalidJson(res);
    }
    if (!input) return this.sendJson(res, 400, errBody("Missing new application"));
    const nameErr = appNameError(input.name);
    if (nameErr) return this.sendJson(res, 500, errBody(`validation failure list:\n${nameErr}`));
    if (this.state.has(input.name)) return this.sendJson(res, 409, errBody("App already exists"));
    const app: AppState = { name: input.name, config: input.config, routes: new Map() };
    this.state.set(app.name, app);
    return this.sendJson(res, 200, `{"message":"App successfully created","app":${encApp(app)}}`);
  }

  private async appUpdate(ctx: Ctx, name: string): Promise<void> {
    const { req, res } = ctx;
    let input: AppInput | null;
    try {
      input = decodeWrapper(await readBody(req), "app", decodeApp, false);
    } catch {
      return this.invalidJson(res);
    }
    if (!input) return this.sendJson(res, 400, errBody("Missing new application"));
    if (input.name !== "")
      return this.sendJson(res, 400, errBody("Could not update app - name is immutable"));
    const app = this.state.get(name);
    if (!app) return this.sendJson(res, 404, errBody("App not found"));
    if (input.config) {
      app.config ??= new Map();
      for (const [k, v] of input.config) {
        if (v === "") app.config.delete(k);
        else app.config.set(k, v);
      }
    }
    return this.sendJson(res, 200, `{"message":"App successfully updated","app":${encApp(app)}}`);
  }

  private async appDelete(ctx: Ctx, name: string): Promise<void> {
    const { req, res } = ctx;
    req.resume();
    const app = this.state.get(name);
    if (app && app.routes.size > 0) return this.sendJson(res, 400, errBody("Cannot remove apps with routes"));
    if (!app) return this.sendJson(res, 500, errBody("bucket not found"));
    this.state.delete(name);
    return this.sendJson(res, 200, '{"message":"App deleted"}');
  }

  // -------------------------------------------------------------------------
  // Routes
  // -------------------------------------------------------------------------

  private async routeList(ctx: Ctx, appName: string): Promise<void> {
    const { req, res } = ctx;
    if (appName === "") return this.crash(ctx);
    req.resume();
    const app = this.state.get(appName);
    const image = queryValue(ctx.rawQuery, "image")?.toString("utf8") ?? "";
    const routes = app ? this.sortedRoutes(app).filter((r) => image === "" || r.image === image) : [];
    return this.sendJson(
      res,
      200,
      `{"message":"Sucessfully listed routes","routes":[${routes.map(encRoute).join(",")}]}`,
    );
  }

  private async routeCreate(ctx: Ctx, appName: string): Promise<void> {
    const { req, res } = ctx;
    if (appName === "") return this.crash(ctx);
    let input: RouteInput | null;
    try {
      input = decodeWrapper(await readBody(req), "route", decodeRoute, true);
    } catch {
      return this.invalidJson(res);
    }
    if (!input) return this.sendJson(res, 400, errBody("Missing new route"));
    input.appName = appName;
    if (input.memory === 0) input.memory = 128;
    if (input.type === "") input.type = "sync";
    if (input.format === "") input.format = "default";
    if (input.maxConcurrency === 0) input.maxConcurrency = 1;
    if (input.timeout === 0) input.timeout = 30;
    const errs = validateRoute(input, false);
    if (errs === "crash") return this.crash(ctx);
    if (errs.length > 0) return this.sendJson(res, 400, errBody(wrapValidation(errs)));
    let app = this.state.get(appName);
    if (!app) {
      const nameErr = appNameError(appName);
      if (nameErr) return this.sendJson(res, 500, errBody(nameErr));
      app = { name: appName, config: null, routes: new Map() };
      this.state.set(appName, app);
    }
    if (app.routes.has(input.path)) return this.sendJson(res, 409, errBody("Route already exists"));
    const route: RouteState = {
      appName,
      path: input.path,
      image: input.image,
      memory: input.memory,
      headers: input.headers ?? new Map(),
      type: input.type,
      format: input.format,
      maxConcurrency: input.maxConcurrency,
      timeout: input.timeout,
      idleTimeout: input.idleTimeout,
      config: input.config ?? new Map(),
      jwtKey: input.jwtKey,
    };
    app.routes.set(route.path, route);
    return this.sendJson(res, 200, `{"message":"Route successfully created","route":${encRoute(route)}}`);
  }

  private async routeGet(ctx: Ctx, appName: string, routeParam: string): Promise<void> {
    const { req, res } = ctx;
    if (appName === "") return this.crash(ctx);
    req.resume();
    const app = this.state.get(appName);
    if (!app) return this.sendJson(res, 404, errBody("App not found"));
    const route = app.routes.get(cleanPath(routeParam));
    if (!route) return this.sendJson(res, 404, errBody("Route not found"));
    return this.sendJson(res, 200, `{"message":"Successfully loaded route","route":${encRoute(route)}}`);
  }

  private async routeUpdate(ctx: Ctx, appName: string, routeParam: string): Promise<void> {
    const { req, res } = ctx;
    if (appName === "") return this.crash(ctx);
    let input: RouteInput | null;
    try {
      input = decodeWrapper(await readBody(req), "route", decodeRoute, true);
    } catch {
      return this.invalidJson(res);
    }
    if (!input) return this.sendJson(res, 400, errBody("Missing new route"));
    if (input.path !== "")
      return this.sendJson(res, 400, errBody("Could not update route - path is immutable"));
    const errs = validateRoute(input, true);
    if (errs === "crash") return this.crash(ctx);
    if (errs.length > 0) return this.sendJson(res, 400, errBody(wrapValidation(errs)));
    const app = this.state.get(appName);
    if (!app) return this.sendJson(res, 404, errBody("App not found"));
    const route = app.routes.get(cleanPath(routeParam));
    if (!route) return this.sendJson(res, 404, errBody("Route not found"));
    if (input.image !== "") route.image = input.image;
    if (input.memory !== 0) route.memory = input.memory;
    if (input.type !== "") route.type = input.type;
    if (input.timeout !== 0) route.timeout = input.timeout;
    if (input.idleTimeout !== 0) route.idleTimeout = input.idleTimeout;
    if (input.format !== "") route.format = input.format;
    if (input.maxConcurrency !== 0) route.maxConcurrency = input.maxConcurrency;
    if (input.jwtKey !== "") route.jwtKey = input.jwtKey;
    if (input.headers) {
      // http.Header Add/Del canonicalise the name, unlike create.
      for (const [k, v] of input.headers) {
        const key = canonicalHeaderKey(k);
        if (!v || v.length === 0) route.headers.delete(key);
        else route.headers.set(key, [...(route.headers.get(key) ?? []), ...v]);
      }
    }
    if (input.config) {
      for (const [k, v] of input.config) {
        if (v === "") route.config.delete(k);
        else route.config.set(k, v);
      }
    }
    return this.sendJson(res, 200, `{"message":"Route successfully updated","route":${encRoute(route)}}`);
  }

  private async routeDelete(ctx: Ctx, appName: string, routeParam: string): Promise<void> {
    const { req, res } = ctx;
    if (appName === "") return this.crash(ctx);
    req.resume();
    const app = this.state.get(appName);
    if (!app) return this.sendJson(res, 404, errBody("App not found"));
    app.routes.delete(cleanPath(routeParam));
    return this.sendJson(res, 200, '{"message":"Route deleted"}');
  }

  // -------------------------------------------------------------------------
  // /tasks: the internal async queue
  // -------------------------------------------------------------------------

  private async handleTasks(ctx: Ctx): Promise<void> {
    const { req, res, method } = ctx;
    if (method === "GET") {
      req.resume();
      const task = this.asyncQueue.shift();
      if (!task) return this.sendJson(res, 202, "null");
      task.record.status = "stolen";
      task.record.finishedAt = Date.now();
      this.events.emit("finish", task.record);
      return this.sendJson(res, 202, this.encTask(task));
    }
    // DELETE acknowledges a processed task; tasks leave the queue when taken.
    const body = await readBody(req);
    let id = "";
    try {
      const parsed: unknown = JSON.parse(body.toString("utf8"));
      if (parsed && typeof parsed === "object" && "id" in parsed) id = String((parsed as { id: unknown }).id);
    } catch {
      return this.sendJson(res, 500, "{}");
    }
    const idx = this.asyncQueue.findIndex((t) => t.id === id);
    const task = idx >= 0 ? this.asyncQueue.splice(idx, 1)[0] : undefined;
    return this.sendJson(res, 202, task ? this.encTask(task) : body.toString("utf8").trim() || "{}");
  }

  private encTask(t: QueuedTask): string {
    const zero = jstr("0001-01-01T00:00:00.000Z");
    const env = new Map(Object.entries(t.env));
    return (
      `{"image":${jstr(t.image)},${t.payload.length > 0 ? `"payload":${jstr(t.payload.toString("utf8"))},` : ""}` +
      `"priority":0,"id":${jstr(t.id)},"completed_at":${zero},"created_at":${zero},` +
      `"env_vars":${jmap(env, jstr)},"app_name":${jstr(t.app)},"path":${jstr(t.path)},"started_at":${zero}}`
    );
  }

  // -------------------------------------------------------------------------
  // Invocation: ANY /r/{app}/{path...}
  // -------------------------------------------------------------------------

  private newInvocation(
    ctx: Ctx,
    app: string,
    route: RouteState,
    env: Record<string, string>,
    id: string,
  ): Invocation {
    const headers: Record<string, string[]> = {};
    const raw = ctx.req.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const k = (raw[i] as string).toLowerCase();
      if (!Object.hasOwn(headers, k)) headers[k] = [];
      headers[k]?.push(raw[i + 1] as string);
    }
    const inv: Invocation = {
      id,
      app,
      path: route.path,
      url: ctx.req.url ?? "",
      method: ctx.method,
      type: route.type === "async" ? "async" : "sync",
      format: route.type === "async" ? "default" : route.format,
      image: route.image,
      headers,
      env,
      stdinBytes: 0,
      status: "running",
      stdoutBytes: 0,
      stdout: "",
      stderr: "",
      queuedAt: Date.now(),
      startedAt: Date.now(),
    };
    this.invocationLog.push(inv);
    if (this.invocationLog.length > MAX_INVOCATION_LOG) {
      this.invocationLog.splice(0, this.invocationLog.length - MAX_INVOCATION_LOG);
    }
    return inv;
  }

  private finishInvocation(inv: Invocation, patch: Partial<Invocation>): void {
    Object.assign(inv, patch, { finishedAt: Date.now() });
    this.events.emit("finish", inv);
  }

  private remoteAddr(req: IncomingMessage): string {
    let addr = req.socket.remoteAddress ?? "";
    if (addr.startsWith("::ffff:")) addr = addr.slice(7);
    return `${addr.includes(":") ? `[${addr}]` : addr}:${req.socket.remotePort ?? 0}`;
  }

  private buildEnv(ctx: Ctx, app: AppState, route: RouteState): Record<string, string> {
    const { req, rawPath, rawQuery, path, method } = ctx;
    const env = new Map<string, string>();
    const host = req.headers.host ?? "";
    env.set("METHOD", method);
    env.set("ROUTE", route.path);
    // The real server formats "%v//%v%v" with the scheme: no colon.
    env.set(
      "REQUEST_URL",
      `http//${host}${escapedPath(rawPath, path)}${rawQuery !== "" ? `?${rawQuery}` : ""}`,
    );
    const toEnv = (k: string) => k.replace(/-/g, "_").toUpperCase();
    for (const [k, v] of app.config ?? []) env.set(toEnv(k), v);
    for (const [k, v] of route.config) env.set(toEnv(k), v);
    for (const [k, values] of groupHeaders(req)) {
      // Go moves these out of the header map before the handler sees it.
      if (k === "Host" || k === "Transfer-Encoding") continue;
      env.set(`HEADER_${toEnv(k)}`, values.join(" "));
    }
    return Object.fromEntries(env);
  }

  /** gin's c.Header(k, v[0]) for every route header: an empty value deletes. */
  private applyRouteHeaders(res: ServerResponse, route: RouteState): void {
    for (const [k, v] of route.headers) {
      const value = v?.[0] ?? "";
      const key = canonicalHeaderKey(k);
      try {
        if (value === "") res.removeHeader(key);
        else res.setHeader(key, value.replace(/[\r\n]/g, " "));
      } catch {
        // Node refuses some names Go would write raw; leave them out.
      }
    }
  }

  private runError(
    res: ServerResponse,
    status: number,
    id: string,
    message: string,
    route?: RouteState,
  ): void {
    if (route) this.applyRouteHeaders(res, route);
    this.sendJson(res, status, runErrBody(id, message));
  }

  private async run(ctx: Ctx, appName: string, routeParam: string): Promise<void> {
    const { req, res, method } = ctx;
    const unix = Math.floor(Date.now() / 1000);
    const id = uuidV5(
      Buffer.concat([Buffer.from(this.remoteAddr(req)), ctx.pathBytes, Buffer.from(String(unix))]),
    );
    if (appName === "") return this.crash(ctx);
    const app = this.state.get(appName);
    if (!app) {
      req.resume();
      return this.sendJson(res, 404, errBody("App not found"));
    }
    const route = app.routes.get(cleanPath(routeParam));
    if (!route) {
      req.resume();
      return this.sendJson(res, 404, errBody("Route not found on that application"));
    }
    const jwtErr = checkJwt(route.jwtKey, req.headers.authorization);
    if (jwtErr !== null) {
      req.resume();
      res.setHeader("WWW-Authenticate", 'Bearer realm=""');
      return this.sendJson(res, 401, errBody(jwtErr));
    }
    // The route matcher cannot build a tree from a stored path with a wildcard.
    if (route.path.includes("*")) return this.crash(ctx);

    const env = this.buildEnv(ctx, app, route);
    const getPayload = () =>
      method === "GET" ? (queryValue(ctx.rawQuery, "payload") ?? Buffer.alloc(0)) : Buffer.alloc(0);

    if (route.type === "async") {
      if (method !== "GET" && method !== "POST") return this.crash(ctx);
      const payload = method === "POST" ? await readBody(req) : getPayload();
      const inv = this.newInvocation(ctx, appName, route, env, id);
      inv.status = "queued";
      inv.startedAt = undefined;
      inv.httpStatus = 202;
      inv.stdinBytes = payload.length;
      this.asyncQueue.push({
        id,
        app: appName,
        path: route.path,
        image: route.image,
        env,
        payload,
        record: inv,
      });
      this.scheduleAsync();
      return this.sendJson(res, 202, `{"call_id":${jstr(id)}}`);
    }

    // A header stored with no values makes the real handler index v[0] after the run.
    const crashAfterRun = [...route.headers.values()].some((v) => !v || v.length === 0);
    const inv = this.newInvocation(ctx, appName, route, env, id);
    const file = resolveImage(this.functionsDir, route.image);
    if (!file) {
      req.resume();
      this.finishInvocation(inv, { status: "error", httpStatus: 500, error: imagePullError(route.image) });
      return this.runError(res, 500, id, imagePullError(route.image));
    }
    if (route.format === "http") {
      const payload = method === "POST" ? await readBody(req) : getPayload();
      if (method !== "POST") req.resume();
      return this.runHot(ctx, app, route, env, id, payload, file, inv, crashAfterRun);
    }
    return this.runSync(ctx, route, env, id, file, inv, crashAfterRun);
  }

  private runSync(
    ctx: Ctx,
    route: RouteState,
    env: Record<string, string>,
    id: string,
    file: string,
    inv: Invocation,
    crashAfterRun: boolean,
  ): Promise<void> {
    const { req, res, method } = ctx;
    let stdin: IncomingMessage | Buffer;
    if (method === "POST") stdin = req;
    else {
      req.resume();
      stdin = method === "GET" ? (queryValue(ctx.rawQuery, "payload") ?? Buffer.alloc(0)) : Buffer.alloc(0);
    }
    const head: Buffer[] = [];
    let headLen = 0;
    let streaming = false;
    const startStreaming = () => {
      streaming = true;
      this.applyRouteHeaders(res, route);
      const first = Buffer.concat(head);
      if (!res.hasHeader("Content-Type")) res.setHeader("Content-Type", detectContentType(first));
      res.writeHead(200);
      res.write(first);
    };
    const captured = new Capture(SYNC_CAPTURE);
    const proc = runCold({
      file,
      env: safeEnv(env),
      stdin,
      timeoutMs: route.timeout * 1000,
      onStdinBytes: (n) => {
        inv.stdinBytes += n;
      },
      onStdout: (chunk, pause, resume) => {
        inv.stdoutBytes += chunk.length;
        captured.add(chunk);
        if (res.destroyed) return;
        if (!streaming) {
          head.push(chunk);
          headLen += chunk.length;
          if (headLen >= SNIFF_LEN && !crashAfterRun) startStreaming();
          return;
        }
        if (!res.write(chunk)) {
          pause();
          res.once("drain", resume);
        }
      },
    });
    this.running.add(proc);
    res.on("close", () => {
      // A caller that goes away cancels the call, as the request context would.
      if (!res.writableFinished) proc.kill();
    });
    return proc.done.then((out) => {
      this.running.delete(proc);
      const base = { exitCode: out.exitCode, stderr: out.stderr, stdout: captured.text() };
      if (out.spawnError) {
        this.finishInvocation(inv, {
          ...base,
          status: "error",
          httpStatus: 500,
          error: imagePullError(route.image),
        });
        return this.runError(res, 500, id, imagePullError(route.image));
      }
      const gone = res.destroyed || (out.killed && !out.timedOut);
      let status: InvocationStatus = "success";
      let message: string | undefined;
      if (out.timedOut) {
        status = "timeout";
        message = "Timed out";
      } else if (out.killed) {
        status = "error";
        message = "client went away";
      } else if (out.exitCode !== 0) {
        status = "error";
        message = out.exitCode === 137 ? "out of memory error" : `exit code ${out.exitCode}`;
      }
      const httpStatus = status === "success" ? 200 : status === "timeout" ? 504 : 500;
      this.finishInvocation(inv, { ...base, status, httpStatus, error: message });
      if (gone) return;
      if (crashAfterRun) return this.crash(ctx);
      if (status !== "success") {
        // Output already went out as a 200; dropping the connection is all that is left.
        if (streaming) return void req.socket.destroy();
        return this.runError(res, httpStatus, id, message as string, route);
      }
      if (streaming) return void res.end();
      this.applyRouteHeaders(res, route);
      const body = Buffer.concat(head);
      if (!res.hasHeader("Content-Type") && body.length > 0)
        res.setHeader("Content-Type", detectContentType(body));
      res.setHeader("Content-Length", body.length);
      res.writeHead(200);
      res.end(body);
    });
  }

  private async runHot(
    ctx: Ctx,
    app: AppState,
    route: RouteState,
    env: Record<string, string>,
    id: string,
    payload: Buffer,
    file: string,
    inv: Invocation,
    crashAfterRun: boolean,
  ): Promise<void> {
    const { res } = ctx;
    const key = JSON.stringify([
      app.name,
      route.path,
      route.image,
      route.memory,
      [...(app.config ?? [])],
      [...route.config],
    ]);
    let pool = this.hotPools.get(key);
    if (!pool) {
      pool = new HotPool();
      this.hotPools.set(key, pool);
    }
    const proc = await pool.acquire(route.maxConcurrency, () => new HotProcess(file, safeEnv(env)));
    if (this.stopped) return;
    const tracked = { kill: () => proc.kill() };
    this.running.add(tracked);

    // What httputil.DumpRequest writes for the request the runner builds.
    const headers = new Map<string, string>();
    for (const [k, v] of Object.entries(env)) headers.set(canonicalHeaderKey(k), v);
    headers.set("Content-Length", String(payload.length));
    headers.set("Task-Id", id);
    const lines = [...headers.keys()]
      .sort(byteCompare)
      .map((k) => `${k}: ${(headers.get(k) as string).replace(/[\r\n]/g, " ").trim()}\r\n`)
      .join("");
    const request = Buffer.concat([Buffer.from(`GET / HTTP/1.1\r\n${lines}\r\n`, "utf8"), payload]);
    inv.stdinBytes = payload.length;

    const result = await proc.call(request, route.timeout * 1000);
    this.running.delete(tracked);
    if (!proc.retired) pool.release(proc, route.idleTimeout);
    inv.stderr = proc.stderr;
    if (!result.ok) {
      const message = result.timeout ? "Timed out" : result.message;
      this.finishInvocation(inv, {
        status: result.timeout ? "timeout" : "error",
        httpStatus: 500,
        error: message,
        exitCode: result.exitCode,
      });
      if (crashAfterRun) return this.crash(ctx);
      return this.runError(res, 500, id, message, route);
    }
    inv.stdoutBytes = result.body.length;
    inv.stdout = result.body.subarray(0, SYNC_CAPTURE).toString("utf8");
    this.finishInvocation(inv, { status: "success", httpStatus: 200 });
    if (res.destroyed) return;
    if (crashAfterRun) return this.crash(ctx);
    this.applyRouteHeaders(res, route);
    if (!res.hasHeader("Content-Type") && result.body.length > 0) {
      res.setHeader("Content-Type", detectContentType(result.body));
    }
    res.setHeader("Content-Length", result.body.length);
    res.writeHead(200);
    res.end(result.body);
  }

  // -------------------------------------------------------------------------
  // Async runner
  // -------------------------------------------------------------------------

  private scheduleAsync(): void {
    if (this.stopped || this.asyncBusy || this.asyncTimer || this.asyncQueue.length === 0) return;
    this.asyncTimer = setTimeout(() => {
      this.asyncTimer = undefined;
      void this.runNextAsync();
    }, this.asyncDelayMs);
  }

  private async runNextAsync(): Promise<void> {
    const task = this.asyncQueue.shift();
    if (!task || this.stopped) return;
    this.asyncBusy = true;
    const inv = task.record;
    inv.status = "running";
    inv.startedAt = Date.now();
    const file = resolveImage(this.functionsDir, task.image);
    if (!file) {
      this.finishInvocation(inv, { status: "error", error: imagePullError(task.image) });
    } else {
      // Async calls always run cold, with the sync env and a fixed 30 s timeout.
      const captured = new Capture(ASYNC_CAPTURE);
      const proc = runCold({
        file,
        env: safeEnv(task.env),
        stdin: task.payload,
        timeoutMs: ASYNC_TIMEOUT_S * 1000,
        onStdout: (chunk) => {
          inv.stdoutBytes += chunk.length;
          captured.add(chunk);
        },
      });
      this.running.add(proc);
      const out = await proc.done;
      this.running.delete(proc);
      let status: InvocationStatus = "success";
      let error: string | undefined;
      if (out.spawnError) {
        status = "error";
        error = imagePullError(task.image);
      } else if (out.timedOut) {
        status = "timeout";
        error = "Timed out";
      } else if (out.killed) {
        status = "error";
        error = "server stopped";
      } else if (out.exitCode !== 0) {
        status = "error";
        error = out.exitCode === 137 ? "out of memory error" : `exit code ${out.exitCode}`;
      }
      this.finishInvocation(inv, {
        status,
        error,
        exitCode: out.exitCode,
        stderr: out.stderr,
        stdout: captured.text(),
      });
    }
    this.asyncBusy = false;
    this.scheduleAsync();
  }
}
