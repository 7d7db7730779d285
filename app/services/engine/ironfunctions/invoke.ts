import { type Readable, Writable } from "node:stream";
import { ReadableStream as NodeReadableStream } from "node:stream/web";
import { type Dispatcher, errors } from "undici";
import {
  clientResponseHeaders,
  engineRequestHeaders,
  engineRequestRawHeaders,
} from "../../../lib/http-headers.ts";
import {
  type CancelSignal,
  type EngineCall,
  EngineError,
  type ResponseStarter,
  type StreamingEngineCall,
} from "../types.ts";

/** Statuses whose responses have no body; a Response with one would throw. */
const nullBodyStatus = new Set([101, 103, 204, 205, 304]);

export type InvokeOptions = {
  /** Added to the route's timeout: the engine enforces the timeout, we only stop waiting later. */
  timeoutMarginMs: number;
  /** Told of every EngineError before it is thrown (metrics, logs). */
  onEngineError?: (error: EngineError) => void;
};

/**
 * One invocation = one request to the engine's `/r/{app}{path}`. Bodies stream both ways with
 * backpressure; nothing is buffered. Failures before the response starts become EngineErrors;
 * failures during the response body end the client's stream with an error.
 */
export async function invokeOverHttp(
  dispatcher: Dispatcher,
  call: EngineCall,
  options: InvokeOptions,
): Promise<Response> {
  const headers = engineRequestHeaders(call.headers, call.forwardAuthHeaders);
  headers["x-openstack-request-id"] = call.requestId;
  let upstream: Dispatcher.ResponseData;
  try {
    // undici accepts any async iterable body; web streams are async iterables in Node 20.
    upstream = await dispatcher.request(
      engineRequest(call, options, headers, (call.body ?? null) as unknown as Readable | null),
    );
  } catch (error) {
    throw reported(toEngineError(error, call.signal), options);
  }
  if (engineLacksRoute(upstream.statusCode, call)) {
    upstream.body.resume();
    throw reported(routeMissingOnEngine(), options);
  }
  const responseHeaders = clientResponseHeaders(upstream.headers);
  if (nullBodyStatus.has(upstream.statusCode) || call.method === "HEAD") {
    upstream.body.resume();
    return new Response(null, { status: upstream.statusCode, headers: responseHeaders });
  }
  // The async iterator gives backpressure, and cancelling the stream destroys the engine body.
  const stream = NodeReadableStream.from(
    upstream.body as AsyncIterable<Uint8Array>,
  ) as ReadableStream<Uint8Array>;
  return new Response(stream, { status: upstream.statusCode, headers: responseHeaders });
}

/**
 * The Node fast path: undici's `stream` API writes the engine's body straight into the client's
 * socket (backpressure included, and a client that goes away aborts the engine request), with no
 * web stream on either side.
 */
export async function invokeStreamingOverHttp(
  dispatcher: Dispatcher,
  call: StreamingEngineCall,
  start: ResponseStarter,
  options: InvokeOptions,
): Promise<void> {
  const headers = engineRequestRawHeaders(call.rawHeaders, call.forwardAuthHeaders);
  headers.push("x-openstack-request-id", call.requestId);
  const response = new EngineResponse(call, start);
  try {
    await dispatcher.stream(
      engineRequest(call, options, headers, call.body as Readable | null),
      response.start,
    );
  } catch (error) {
    if (response.started) throw error;
    throw reported(toEngineError(error, call.signal), options);
  }
  if (response.lacksRoute) throw reported(routeMissingOnEngine(), options);
}

function reported(error: Error, options: InvokeOptions): Error {
  if (error instanceof EngineError) options.onEngineError?.(error);
  return error;
}

/** Where the engine's answer goes: the caller's writable, or nowhere when it is the engine's own 404. */
class EngineResponse {
  started = false;
  lacksRoute = false;
  /** Bound once: undici calls it with the engine's status and headers. */
  readonly start: (data: {
    statusCode: number;
    headers: Record<string, string | string[] | undefined>;
  }) => Writable;

  constructor(
    private readonly call: Pick<EngineCall, "route">,
    private readonly starter: ResponseStarter,
  ) {
    this.start = this.open.bind(this);
  }

  private open({
    statusCode,
    headers,
  }: {
    statusCode: number;
    headers: Record<string, string | string[] | undefined>;
  }) {
    if (engineLacksRoute(statusCode, this.call)) {
      this.lacksRoute = true;
      return new Writable({ write: (_chunk, _encoding, done) => done() });
    }
    this.started = true;
    return this.starter(statusCode, headers);
  }
}

/**
 * The engine request: its `/r/{app}{path}`, waited on for the route's timeout plus a margin. One
 * literal of one shape for both paths (undici reads it on every invocation; no spreads).
 */
function engineRequest(
  call: Omit<EngineCall, "headers" | "body" | "signal"> & { signal: CancelSignal },
  options: InvokeOptions,
  headers: Record<string, string> | string[],
  body: Readable | null,
) {
  const timeoutMs = call.route.timeout * 1000 + options.timeoutMarginMs;
  return {
    method: call.method as Dispatcher.HttpMethod,
    path: call.query ? `/r/${call.engineApp}${call.path}?${call.query}` : `/r/${call.engineApp}${call.path}`,
    headers,
    body,
    signal: call.signal,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  };
}

/**
 * A default-format function cannot choose its status, so a 404 there is the engine saying it has
 * no such app or route (deleted by another instance, or drift): not the function's answer.
 */
function engineLacksRoute(status: number, call: Pick<EngineCall, "route">): boolean {
  return status === 404 && call.route.format === "default";
}

const routeMissingOnEngine = () => new EngineError("not_found", "The function engine has no such route");

function toEngineError(error: unknown, signal: CancelSignal): Error {
  if (error instanceof EngineError) return error;
  if (signal.aborted)
    return signal.reason instanceof Error ? signal.reason : new EngineError("failed", "aborted");
  if (error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError) {
    return new EngineError("timeout", "The function did not answer in time", undefined, { cause: error });
  }
  if (error instanceof errors.ConnectTimeoutError) {
    return new EngineError("unavailable", "The function engine is unreachable (connect timeout)", undefined, {
      cause: error,
    });
  }
  const code = (error as { code?: string }).code;
  if (
    code &&
    /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|UND_ERR_SOCKET|UND_ERR_CLOSED)$/.test(
      code,
    )
  ) {
    return new EngineError("unavailable", "The function engine is unreachable", undefined, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}
