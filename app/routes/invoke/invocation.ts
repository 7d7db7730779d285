import type { IncomingMessage, ServerResponse } from "node:http";
import { Writable } from "node:stream";
import { alreadySent } from "../../lib/already-sent.ts";
import { baseUrlFrom } from "../../lib/base-url.ts";
import {
  BodyTimedOut,
  bodyTimeoutError,
  bodyTimeoutIn,
  bodyTimeoutMs,
  withBodyTimeout,
} from "../../lib/body-timeout.ts";
import { ApiError } from "../../lib/errors.ts";
import { clientResponseHeaderRecord } from "../../lib/http-headers.ts";
import type { Logger } from "../../lib/logger.ts";
import { NodeUpload, watchBodyProgress } from "../../node/body-watchdog.ts";
import { type CancelEmitter, EngineError, type StreamingEngineCall } from "../../services/engine/types.ts";
import type { InvocationOutcome } from "../../services/metrics/index.ts";
import type { ReleaseSlot } from "../../services/quotas/index.ts";
import type { RateLimitHeaders } from "../../services/rate-limit/index.ts";
import type { InvokeTarget } from "../../services/route-lookup/index.ts";
import type { AppServices } from "../../types.ts";

/**
 * One invocation as both ways in see it: Hono's handlers (any Fetch runtime) and the Node
 * server's pre-routed path (`app/node/invocation-listener.ts`), which skips the router and the
 * middleware chain. Everything from here on is the same code for both.
 */
export interface InvocationRequest {
  readonly services: AppServices;
  readonly method: string;
  /** Path and query as the client sent them (`/r/app/hello?x=1`). */
  readonly pathAndQuery: string;
  readonly requestId: string;
  readonly log: Logger;
  header(name: string): string | undefined;
  /** `http://host:port` as the client called it; asked only when no public URL is configured. */
  origin(): string;
  /** The socket's peer on Node (`peerAddressOf`); undefined in runtimes that give none. */
  readonly peerAddress: string | undefined;
  /** Node's request and response, when the runtime is Node: bodies then go socket to socket. */
  readonly node: NodeBindings | null;
  /** The Fetch Request, for engines that cannot stream to Node sockets; null on Node's pre-routed path. */
  readonly web: Request | null;
}

export type NodeBindings = { incoming: IncomingMessage; outgoing: ServerResponse };

/**
 * The client's address on Node. A socket already closed has no address left: such a caller is
 * nobody in particular, not a sign of another runtime.
 */
export function peerAddressOf(incoming: IncomingMessage): string {
  return incoming.socket?.remoteAddress ?? "unknown";
}

/** What an invocation URL names: `/r/{app}{route}` or `/v1/r/{project_id}/{app}{route}`. */
export type InvocationPath = {
  /** null on the public path. */
  projectId: string | null;
  appName: string;
  /** The route's path, cleaned as the engine cleans it; null when it can never name a route. */
  routePath: string | null;
  /** The route template metrics count it under. */
  template: string;
};

const publicPrefix = "/r/";
// The same string objects every time: metrics find their series by these values.
const publicTemplates = { app: "/r/:app", route: "/r/:app/*" } as const;
const privateTemplates = { app: "/v1/r/:project_id/:app", route: "/v1/r/:project_id/:app/*" } as const;
const privatePrefix = "/v1/r/";

/** Parses an invocation path; null when it is none (no app, no project). */
export function parseInvocationPath(path: string): InvocationPath | null {
  let projectId: string | null = null;
  let rest: string;
  if (path.startsWith(publicPrefix)) {
    rest = path.slice(publicPrefix.length);
  } else if (path.startsWith(privatePrefix)) {
    const slash = path.indexOf("/", privatePrefix.length);
    if (slash <= privatePrefix.length) return null;
    projectId = path.slice(privatePrefix.length, slash);
    rest = path.slice(slash + 1);
  } else {
    return null;
  }
  const slash = rest.indexOf("/");
  const appName = slash === -1 ? rest : rest.slice(0, slash);
  if (appName === "") return null;
  const templates = projectId === null ? publicTemplates : privateTemplates;
  return {
    projectId,
    appName,
    routePath: routePathFrom(slash === -1 ? "" : rest.slice(slash)),
    template: slash === -1 ? templates.app : templates.route,
  };
}

/** Methods the engine accepts on async routes; others crash the real server (BEHAVIOUR.md). */
const asyncMethods = new Set(["GET", "POST"]);

class BodyTooLarge extends Error {}

/** Paths that need no cleaning: `/segment/segment`, no empty, `.` or `..` segments, no escapes. */
const cleanPath = /^(?:\/(?!\.\.?(?:\/|$))[^/%]+)+$/;

/** After the app: `` is `/`, `/a//b/` is `/a/b`; the engine cleans paths the same way. */
export function routePathFrom(rest: string): string | null {
  // Almost every invocation names its route plainly; only the rest is split and rebuilt.
  if (cleanPath.test(rest)) return rest;
  if (rest.includes("%")) return null;
  const segments = rest.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (segments.includes("..")) return null;
  return `/${segments.join("/")}`;
}

// `return await` below is deliberate: an async function returning a promise unawaited settles
// through extra microtask jobs, once per invocation for each level of this path.

/**
 * Runs one invocation to its answer: resolves the route, checks who may call it, counts it against
 * its rate limit and the project's concurrency, and makes the ONE engine call. Refusals are thrown
 * as ApiError before the engine is contacted.
 */
export async function invoke(req: InvocationRequest, parsed: InvocationPath): Promise<Response> {
  const { routeLookup, rateLimiter } = req.services;
  const { projectId, appName, routePath } = parsed;
  let target = routePath ? routeLookup.cached(appName, routePath) : null;
  if (target === undefined) target = await routeLookup.find(appName, routePath as string);
  if (projectId === null) {
    if (!target) throw new ApiError("not_found", "Route not found");
    if (!target.isPublic) {
      throw new ApiError(
        "forbidden",
        "This route is private: invoke it through /v1/r/{project_id}/... with a token",
      );
    }
    const caller = rateLimiter.clientAddress(req.peerAddress, () => req.header("x-forwarded-for"));
    const limit = await rateLimiter.consume({
      kind: "public",
      route: target.routeId,
      caller,
      rate: target.rateLimit,
      burst: target.rateLimitBurst,
    });
    return await forward(req, target, limit);
  }
  // Another project's app answers like a missing one: nothing leaks across projects.
  if (!target || target.projectId !== projectId) throw new ApiError("not_found", "Route not found");
  const limit = await rateLimiter.consume({
    kind: "private",
    route: target.routeId,
    caller: projectId,
    rate: target.rateLimit,
    burst: target.rateLimitBurst,
  });
  return await forward(req, target, limit);
}

/**
 * The engine is called only once the rate limit let the invocation through; its headers
 * (`limit`, null when unlimited) go out with the function's answer.
 */
async function forward(
  req: InvocationRequest,
  target: InvokeTarget,
  limit: RateLimitHeaders | null,
): Promise<Response> {
  const { services, method } = req;
  const isAsync = target.route.type === "async";
  if (isAsync && !asyncMethods.has(method)) {
    throw new ApiError("method_not_allowed", `Async routes accept only GET and POST, not ${method}`, {
      headers: { Allow: "GET, POST" },
    });
  }
  const maxBodyBytes = target.maxBodyBytes ?? services.invocation.maxBodyBytes;
  const declaredLength = req.header("content-length");
  if (declaredLength !== undefined && Number(declaredLength) > maxBodyBytes) {
    throw tooLarge(maxBodyBytes);
  }
  // Socket to socket when both Node and the engine driver can; else through the Fetch Request.
  const node = services.engine.invokeStreaming ? req.node : null;
  const web = req.web;
  if (!node && !web) {
    // Only the Node server's pre-routed path comes without a Request, and it serves streaming engines only.
    throw new Error("invocation without a Request needs an engine that streams to Node sockets");
  }
  // The last refusal before the engine: a 429 here has cost the engine nothing.
  const slot = services.quotas.acquireInvocation(target.projectId, target.route.timeout);
  const release = typeof slot === "function" ? slot : await slot;
  if (node) return await forwardStreaming(req, target, node, maxBodyBytes, release, limit);
  let response: Response;
  try {
    response = await invokePortable(req, web as Request, target, maxBodyBytes);
  } catch (error) {
    release();
    throw error;
  }
  // The slot is held until the client has the whole answer (or gave up on it).
  const held = releasedWhenDone(response, release);
  const answer = isAsync && held.status === 202 ? await withCallIdHeader(held) : held;
  return limit ? withHeaders(answer, limit) : answer;
}

async function invokePortable(
  req: InvocationRequest,
  raw: Request,
  target: InvokeTarget,
  maxBodyBytes: number,
) {
  const { services, method } = req;
  // `raw.body` materialises a full Request on Node: look at it only when a body can exist.
  const body =
    method !== "GET" && method !== "HEAD" && raw.body
      ? limitBody(withBodyTimeout(raw.body, bodyTimeoutMs(services)), maxBodyBytes)
      : null;
  const started = performance.now();
  let response: Response;
  try {
    response = await services.engine.invoke({
      ...callFields(req, target),
      headers: raw.headers,
      body: body as ReadableStream<Uint8Array> | null,
      signal: raw.signal,
    });
  } catch (error) {
    if (raw.signal.aborted && !bodyTimeoutIn(error)) return clientClosed(req, started);
    throw failedInvocation(req, target, started, error, maxBodyBytes);
  }
  recordInvocation(req, started, response.status >= 500 ? "function_error" : "success");
  return response;
}

function withHeaders(response: Response, extra: Record<string, string>): Response {
  try {
    for (const [name, value] of Object.entries(extra)) response.headers.set(name, value);
    return response;
  } catch {
    // Immutable headers (a Response straight from fetch): copy them into a new Response.
    const headers = new Headers(response.headers);
    for (const [name, value] of Object.entries(extra)) headers.set(name, value);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}

/**
 * The same response, whose body calls `release` once it has been read to the end, failed, or
 * been cancelled (the runtime cancels it when the client goes away).
 */
function releasedWhenDone(response: Response, release: ReleaseSlot): Response {
  const source = response.body;
  if (!source) {
    release();
    return response;
  }
  const reader = source.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        release();
        controller.error(error);
        return;
      }
      if (chunk.done) {
        release();
        controller.close();
      } else {
        controller.enqueue(chunk.value);
      }
    },
    cancel(reason) {
      release();
      return reader.cancel(reason);
    },
  });
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

class ClientWentAway extends Error {}

/**
 * The client's cancellation for the engine call. The driver adds one `abort` listener and removes
 * it when the call settles; a full EventEmitter per invocation would only add bookkeeping to that.
 */
class ClientGone implements CancelEmitter {
  aborted = false;
  reason: unknown;
  private listener: (() => void) | null = null;
  /** Listens to the client's response: it closing before the answer was written out cancels. */
  readonly onResponseClose: () => void;

  constructor(private readonly outgoing: ServerResponse) {
    // Bound, not an arrow: the per-request closure would get a name set on it at run time (tsx).
    this.onResponseClose = this.cancelIfUnfinished.bind(this);
  }

  on(_event: "abort", listener: () => void): this {
    this.listener = listener;
    return this;
  }

  removeListener(_event: "abort", listener: () => void): this {
    if (this.listener === listener) this.listener = null;
    return this;
  }

  cancel(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listener = this.listener;
    this.listener = null;
    listener?.();
  }

  private cancelIfUnfinished(): void {
    if (!this.outgoing.writableFinished) this.cancel(new ClientWentAway("the client went away"));
  }
}

/**
 * On Node the body goes socket to socket: Node's request stream to the engine, the engine's
 * response into Node's response, without web streams in between. The Response returned only
 * tells @hono/node-server (and the middleware) that the answer has already been sent.
 */
async function forwardStreaming(
  req: InvocationRequest,
  target: InvokeTarget,
  { incoming, outgoing }: NodeBindings,
  maxBodyBytes: number,
  release: ReleaseSlot,
  limit: RateLimitHeaders | null,
): Promise<Response> {
  const { services, method } = req;
  const engine = services.engine;
  const hasBody = method !== "GET" && method !== "HEAD";
  // Node's parser holds a body to its Content-Length; only chunked bodies need counting.
  const body = !hasBody
    ? null
    : incoming.headers["content-length"] !== undefined
      ? incoming
      : limitBody(incoming, maxBodyBytes);
  const clientGone = new ClientGone(outgoing);
  outgoing.once("close", clientGone.onResponseClose);
  // A client that stops sending its body cancels the engine call like one that hangs up.
  const timeoutMs = bodyTimeoutMs(services);
  const stopWatching = body
    ? watchBodyProgress(incoming, timeoutMs, () => clientGone.cancel(new BodyTimedOut(timeoutMs)))
    : () => {};
  const isAsync = target.route.type === "async";
  const started = performance.now();
  let status = 0;
  try {
    await (engine.invokeStreaming as NonNullable<typeof engine.invokeStreaming>)(
      streamingCall(
        req,
        target,
        incoming.rawHeaders,
        body,
        body ? new NodeUpload(incoming) : null,
        clientGone,
      ),
      (upstreamStatus, upstreamHeaders) => {
        status = upstreamStatus;
        // Timed to the response headers, as on the portable path; the body may stream for long.
        recordInvocation(req, started, status >= 500 ? "function_error" : "success");
        const headers = clientResponseHeaderRecord(upstreamHeaders);
        headers["x-openstack-request-id"] = req.requestId;
        if (limit) Object.assign(headers, limit);
        if (isAsync && upstreamStatus === 202) return new CallIdAnswer(outgoing, upstreamStatus, headers);
        outgoing.writeHead(upstreamStatus, headers);
        return outgoing;
      },
    );
  } catch (error) {
    const gone = clientGone.aborted;
    if (status === 0 && gone && !bodyTimeoutIn(clientGone.reason)) return clientClosed(req, started);
    if (status === 0) throw failedInvocation(req, target, started, error, maxBodyBytes);
    // Headers are out: all that is left is to end the client's response and say why in the log.
    if (!outgoing.destroyed) outgoing.destroy();
    req.log.warn("invocation response cut short", {
      reason: gone ? (clientGone.reason as Error).message : (error as Error).message,
    });
  } finally {
    stopWatching();
    outgoing.off("close", clientGone.onResponseClose);
    // The engine call has settled: its answer was written out in full, or it failed.
    release();
  }
  return alreadySent(status);
}

/** An async call's answer is a few bytes of JSON; anything this large is not one. */
const maxAsyncAnswerBytes = 64 * 1024;

/**
 * Collects the engine's answer to an async call, then writes it to the client with the call id
 * also in `X-Call-Id` (the engine gives it only in the body).
 */
class CallIdAnswer extends Writable {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly outgoing: ServerResponse,
    private readonly status: number,
    private readonly headers: Record<string, string | string[]>,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error) => void): void {
    this.size += chunk.byteLength;
    if (this.size > maxAsyncAnswerBytes) {
      done(new Error(`async call answer larger than ${maxAsyncAnswerBytes} bytes`));
      return;
    }
    this.chunks.push(chunk);
    done();
  }

  override _final(done: (error?: Error) => void): void {
    const text = Buffer.concat(this.chunks);
    const callId = callIdIn(text.toString("utf8"));
    if (callId !== undefined) this.headers["x-call-id"] = callId;
    this.headers["content-length"] = String(text.byteLength);
    delete this.headers["transfer-encoding"];
    this.outgoing.writeHead(this.status, this.headers);
    this.outgoing.end(text, () => done());
  }
}

function callIdIn(text: string): string | undefined {
  try {
    const callId = (JSON.parse(text) as { call_id?: unknown }).call_id;
    return typeof callId === "string" ? callId : undefined;
  } catch {
    // Not JSON: the engine's answer goes through unchanged.
    return undefined;
  }
}

/** The URL as the client called it; behind a proxy, on the configured public base URL. */
function requestUrlOf(req: InvocationRequest): string {
  return `${baseUrlFrom(req.services.publicUrl, () => req.origin())}${req.pathAndQuery}`;
}

/**
 * The Node path's call: the common fields with the transport's three added by assignment. An
 * object spread here cost about 3 µs per invocation (measured), more than the rest of this file.
 */
function streamingCall(
  req: InvocationRequest,
  target: InvokeTarget,
  rawHeaders: readonly string[],
  body: StreamingEngineCall["body"],
  upload: StreamingEngineCall["upload"],
  signal: ClientGone,
): StreamingEngineCall {
  const call = callFields(req, target) as ReturnType<typeof callFields> & Partial<StreamingEngineCall>;
  call.rawHeaders = rawHeaders;
  call.body = body;
  call.upload = upload;
  call.signal = signal;
  return call as StreamingEngineCall;
}

/** What both invocation paths tell the engine about the call, apart from body, headers and signal. */
function callFields(req: InvocationRequest, target: InvokeTarget) {
  const { pathAndQuery } = req;
  const queryStart = pathAndQuery.indexOf("?");
  return {
    engineApp: target.engineApp,
    appConfig: target.appConfig,
    requestUrl: requestUrlOf(req),
    route: target.route,
    method: req.method,
    path: target.route.path,
    query: queryStart === -1 ? "" : pathAndQuery.slice(queryStart + 1),
    forwardAuthHeaders: target.forwardAuthHeaders,
    requestId: req.requestId,
  };
}

/**
 * The client hung up before the function answered: the engine call is already cancelled and
 * nobody is left to read an answer. 499 (nginx's "client closed request") keeps it out of the
 * error logs and says what happened in the access log.
 */
function clientClosed(req: InvocationRequest, started: number): Response {
  recordInvocation(req, started, "cancelled");
  return alreadySent(499);
}

function recordInvocation(req: InvocationRequest, started: number, outcome: InvocationOutcome) {
  const { metrics } = req.services;
  metrics.invocations.record({ outcome }, (performance.now() - started) / 1000);
}

/** Client aborts are handled before (`clientClosed`), so only the failure itself decides. */
function outcomeOf(failure: unknown): InvocationOutcome {
  if (failure instanceof ApiError) {
    if (failure.code === "gateway_timeout") return "timeout";
    if (failure.code === "payload_too_large" || failure.code === "request_timeout") return "cancelled";
  }
  return "engine_error";
}

function tooLarge(maxBodyBytes: number): ApiError {
  // Closing the connection stops the client's upload; otherwise the server would drain it.
  return new ApiError("payload_too_large", `Request body is larger than ${maxBodyBytes} bytes`, {
    headers: { Connection: "close" },
  });
}

/** Counts bytes as they stream past and stops the upload once the limit is crossed. */
async function* limitBody(
  body: ReadableStream<Uint8Array> | IncomingMessage,
  maxBytes: number,
): AsyncGenerator<Uint8Array> {
  let total = 0;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new BodyTooLarge();
    yield chunk;
  }
}

/**
 * Turns an engine failure before the response started into the client's error, counts it, and
 * when the engine no longer has the route, stops serving it from the cache before the TTL says so.
 */
function failedInvocation(
  req: InvocationRequest,
  target: InvokeTarget,
  started: number,
  error: unknown,
  maxBodyBytes: number,
): unknown {
  const failure = invocationError(error, maxBodyBytes);
  if (failure instanceof ApiError && failure.code === "not_found") {
    req.services.routeLookup.invalidateApp(target.appName);
  }
  recordInvocation(req, started, outcomeOf(failure));
  return failure;
}

function invocationError(error: unknown, maxBodyBytes: number): unknown {
  if (error instanceof BodyTooLarge || (error instanceof Error && error.cause instanceof BodyTooLarge)) {
    return tooLarge(maxBodyBytes);
  }
  const timedOut = bodyTimeoutIn(error);
  if (timedOut) return bodyTimeoutError(timedOut.timeoutMs);
  if (error instanceof EngineError) {
    switch (error.kind) {
      case "timeout":
        return new ApiError("gateway_timeout", "The function did not answer within its timeout");
      case "unavailable":
        return new ApiError("bad_gateway", "The function engine is unreachable");
      case "not_found":
        return new ApiError("not_found", "Route not found");
      default:
        return new ApiError("engine_error", `The function engine failed: ${error.message}`);
    }
  }
  return error;
}

/** The engine returns the call id only in the body; clients that stream or ignore bodies want it as a header. */
async function withCallIdHeader(response: Response): Promise<Response> {
  const text = await response.text();
  const headers = new Headers(response.headers);
  const callId = callIdIn(text);
  if (callId !== undefined) headers.set("X-Call-Id", callId);
  headers.delete("content-length");
  return new Response(text, { status: response.status, headers });
}
