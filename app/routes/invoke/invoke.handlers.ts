import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "hono";
import { alreadySent } from "../../lib/already-sent.ts";
import { baseUrl } from "../../lib/base-url.ts";
import {
  BodyTimedOut,
  bodyTimeoutError,
  bodyTimeoutIn,
  bodyTimeoutMs,
  withBodyTimeout,
} from "../../lib/body-timeout.ts";
import { ApiError } from "../../lib/errors.ts";
import { clientResponseHeaderRecord } from "../../lib/http-headers.ts";
import { watchBodyProgress } from "../../node/body-watchdog.ts";
import { EngineError } from "../../services/engine/types.ts";
import type { InvocationOutcome } from "../../services/metrics/index.ts";
import type { ReleaseSlot } from "../../services/quotas/index.ts";
import type { RateLimitHeaders } from "../../services/rate-limit/index.ts";
import type { InvokeTarget } from "../../services/route-lookup/index.ts";
import type { AppEnv } from "../../types.ts";

/** Methods the engine accepts on async routes; others crash the real server (BEHAVIOUR.md). */
const asyncMethods = new Set(["GET", "POST"]);

class BodyTooLarge extends Error {}

/** Paths that need no cleaning: `/segment/segment`, no empty, `.` or `..` segments, no escapes. */
const cleanPath = /^(?:\/(?!\.\.?(?:\/|$))[^/%]+)+$/;

/** `/r/{app}` is `/`, `/r/{app}/a//b/` is `/a/b`: the engine cleans paths the same way. */
export function routePathFrom(requestPath: string, prefixLength: number): string | null {
  const rest = requestPath.slice(prefixLength);
  // Almost every invocation names its route plainly; only the rest is split and rebuilt.
  if (cleanPath.test(rest)) return rest;
  if (rest.includes("%")) return null;
  const segments = rest.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (segments.includes("..")) return null;
  return `/${segments.join("/")}`;
}

export async function invokePublic(c: Context<AppEnv>) {
  const appName = c.req.param("app") ?? "";
  const path = routePathFrom(c.req.path, "/r/".length + appName.length);
  const target = path ? await c.get("services").routeLookup.find(appName, path) : null;
  if (!target) throw new ApiError("not_found", "Route not found");
  if (!target.isPublic) {
    throw new ApiError(
      "forbidden",
      "This route is private: invoke it through /v1/r/{project_id}/... with a token",
    );
  }
  const { rateLimiter } = c.get("services");
  const caller = rateLimiter.clientAddress(peerAddress(c), () => c.req.header("x-forwarded-for"));
  const limit = await rateLimiter.consume({
    kind: "public",
    route: target.routeId,
    caller,
    rate: target.rateLimit,
    burst: target.rateLimitBurst,
  });
  return forward(c, target, limit);
}

export async function invokePrivate(c: Context<AppEnv>) {
  const projectId = c.req.param("project_id") ?? "";
  const appName = c.req.param("app") ?? "";
  const path = routePathFrom(c.req.path, "/v1/r//".length + projectId.length + appName.length);
  const target = path ? await c.get("services").routeLookup.find(appName, path) : null;
  // Another project's app answers like a missing one: nothing leaks across projects.
  if (!target || target.projectId !== projectId) throw new ApiError("not_found", "Route not found");
  const limit = await c.get("services").rateLimiter.consume({
    kind: "private",
    route: target.routeId,
    caller: projectId,
    rate: target.rateLimit,
    burst: target.rateLimitBurst,
  });
  return forward(c, target, limit);
}

/**
 * The engine is called only once the rate limit let the invocation through; its headers
 * (`limit`, null when unlimited) go out with the function's answer.
 */
async function forward(
  c: Context<AppEnv>,
  target: InvokeTarget,
  limit: RateLimitHeaders | null,
): Promise<Response> {
  const services = c.get("services");
  const method = c.req.method;
  const isAsync = target.route.type === "async";
  if (isAsync && !asyncMethods.has(method)) {
    throw new ApiError("method_not_allowed", `Async routes accept only GET and POST, not ${method}`, {
      headers: { Allow: "GET, POST" },
    });
  }
  const maxBodyBytes = target.maxBodyBytes ?? services.invocation.maxBodyBytes;
  const declaredLength = c.req.header("content-length");
  if (declaredLength !== undefined && Number(declaredLength) > maxBodyBytes) {
    throw tooLarge(maxBodyBytes);
  }
  // The last refusal before the engine: a 429 here has cost the engine nothing.
  const release = await services.quotas.acquireInvocation(target.projectId, target.route.timeout);
  const node = nodeBindings(c);
  if (node && !isAsync && services.engine.invokeStreaming) {
    return forwardStreaming(c, target, node, maxBodyBytes, release, limit);
  }
  let response: Response;
  try {
    response = await invokePortable(c, target, maxBodyBytes);
  } catch (error) {
    release();
    throw error;
  }
  // The slot is held until the client has the whole answer (or gave up on it).
  const held = releasedWhenDone(response, release);
  const answer = isAsync && held.status === 202 ? await withCallIdHeader(held) : held;
  return limit ? withHeaders(answer, limit) : answer;
}

async function invokePortable(c: Context<AppEnv>, target: InvokeTarget, maxBodyBytes: number) {
  const services = c.get("services");
  const method = c.req.method;
  const raw = c.req.raw;
  // `raw.body` materialises a full Request on Node: look at it only when a body can exist.
  const body =
    method !== "GET" && method !== "HEAD" && raw.body
      ? limitBody(withBodyTimeout(raw.body, bodyTimeoutMs(services)), maxBodyBytes)
      : null;
  const started = performance.now();
  let response: Response;
  try {
    response = await services.engine.invoke({
      ...callFields(c, target),
      headers: raw.headers,
      body: body as ReadableStream<Uint8Array> | null,
      signal: raw.signal,
    });
  } catch (error) {
    if (raw.signal.aborted && !bodyTimeoutIn(error)) return clientClosed(c, started);
    throw failedInvocation(c, target, started, error, maxBodyBytes);
  }
  recordInvocation(c, started, response.status >= 500 ? "function_error" : "success");
  return response;
}

/**
 * The socket's peer on Node; undefined in runtimes that give none. A socket already closed has no
 * address left: such a caller is nobody in particular, not a sign of another runtime.
 */
function peerAddress(c: Context<AppEnv>): string | undefined {
  const incoming = nodeBindings(c)?.incoming;
  return incoming ? (incoming.socket?.remoteAddress ?? "unknown") : undefined;
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

type NodeBindings = { incoming: IncomingMessage; outgoing: ServerResponse };

/** @hono/node-server passes Node's request and response as the app's env. */
function nodeBindings(c: Context<AppEnv>): NodeBindings | null {
  const env = c.env as Partial<NodeBindings> | undefined;
  return env?.incoming && env.outgoing ? (env as NodeBindings) : null;
}

class ClientWentAway extends Error {}

/** The client's cancellation for the engine call: an `abort` event, as undici accepts from emitters. */
class ClientGone extends EventEmitter {
  aborted = false;
  reason: unknown;
  /** Listens to the client's response: it closing before the answer was written out cancels. */
  readonly onResponseClose: () => void;

  constructor(private readonly outgoing: ServerResponse) {
    super();
    // Bound, not an arrow: the per-request closure would get a name set on it at run time (tsx).
    this.onResponseClose = this.cancelIfUnfinished.bind(this);
  }

  cancel(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit("abort");
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
  c: Context<AppEnv>,
  target: InvokeTarget,
  { incoming, outgoing }: NodeBindings,
  maxBodyBytes: number,
  release: ReleaseSlot,
  limit: RateLimitHeaders | null,
): Promise<Response> {
  const { engine } = c.get("services");
  const method = c.req.method;
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
  const timeoutMs = bodyTimeoutMs(c.get("services"));
  const stopWatching = body
    ? watchBodyProgress(incoming, timeoutMs, () => clientGone.cancel(new BodyTimedOut(timeoutMs)))
    : () => {};
  const started = performance.now();
  let status = 0;
  try {
    await (engine.invokeStreaming as NonNullable<typeof engine.invokeStreaming>)(
      { ...callFields(c, target), rawHeaders: incoming.rawHeaders, body, signal: clientGone },
      (upstreamStatus, upstreamHeaders) => {
        status = upstreamStatus;
        // Timed to the response headers, as on the portable path; the body may stream for long.
        recordInvocation(c, started, status >= 500 ? "function_error" : "success");
        const headers = clientResponseHeaderRecord(upstreamHeaders);
        headers["x-openstack-request-id"] = c.get("requestId");
        if (limit) Object.assign(headers, limit);
        outgoing.writeHead(upstreamStatus, headers);
        return outgoing;
      },
    );
  } catch (error) {
    const gone = clientGone.aborted;
    if (status === 0 && gone && !bodyTimeoutIn(clientGone.reason)) return clientClosed(c, started);
    if (status === 0) throw failedInvocation(c, target, started, error, maxBodyBytes);
    // Headers are out: all that is left is to end the client's response and say why in the log.
    if (!outgoing.destroyed) outgoing.destroy();
    c.get("log").warn("invocation response cut short", {
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

/** What both invocation paths tell the engine about the call, apart from body, headers and signal. */
function callFields(c: Context<AppEnv>, target: InvokeTarget) {
  const url = c.req.url;
  const queryStart = url.indexOf("?");
  return {
    engineApp: target.engineApp,
    appConfig: target.appConfig,
    // The URL as the client called it; behind a proxy, on the configured public base URL.
    requestUrl: c.get("services").publicUrl
      ? `${baseUrl(c)}${url.slice(url.indexOf("/", url.indexOf("//") + 2))}`
      : url,
    route: target.route,
    method: c.req.method,
    path: target.route.path,
    query: queryStart === -1 ? "" : url.slice(queryStart + 1),
    forwardAuthHeaders: target.forwardAuthHeaders,
    requestId: c.get("requestId"),
  };
}

/**
 * The client hung up before the function answered: the engine call is already cancelled and
 * nobody is left to read an answer. 499 (nginx's "client closed request") keeps it out of the
 * error logs and says what happened in the access log.
 */
function clientClosed(c: Context<AppEnv>, started: number): Response {
  recordInvocation(c, started, "cancelled");
  return alreadySent(499);
}

function recordInvocation(c: Context<AppEnv>, started: number, outcome: InvocationOutcome) {
  const { metrics } = c.get("services");
  metrics.invocations.inc({ outcome });
  metrics.invocationDuration.observe({ outcome }, (performance.now() - started) / 1000);
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
  c: Context<AppEnv>,
  target: InvokeTarget,
  started: number,
  error: unknown,
  maxBodyBytes: number,
): unknown {
  const failure = invocationError(error, maxBodyBytes);
  if (failure instanceof ApiError && failure.code === "not_found") {
    c.get("services").routeLookup.invalidateApp(target.appName);
  }
  recordInvocation(c, started, outcomeOf(failure));
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
  try {
    const callId = (JSON.parse(text) as { call_id?: unknown }).call_id;
    if (typeof callId === "string") headers.set("X-Call-Id", callId);
  } catch {
    // Not JSON: pass the engine's answer through unchanged.
  }
  headers.delete("content-length");
  return new Response(text, { status: response.status, headers });
}
