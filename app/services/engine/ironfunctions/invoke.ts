import type { Readable, Writable } from "node:stream";
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
      engineRequest(
        call,
        headers,
        (call.body ?? null) as unknown as Readable | null,
        answerTimeoutMs(call, options),
      ),
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
 * The Node fast path: the engine's body goes straight into the writable the caller opens for it
 * (the client's socket), with backpressure, and no web stream on either side. A cancelled `signal`
 * (the client went away) aborts the engine request.
 */
export function invokeStreamingOverHttp(
  dispatcher: Dispatcher,
  call: StreamingEngineCall,
  start: ResponseStarter,
  options: InvokeOptions,
): Promise<void> {
  const headers = engineRequestRawHeaders(call.rawHeaders, call.forwardAuthHeaders);
  headers.push("x-openstack-request-id", call.requestId);
  return new Promise((resolve, reject) => {
    dispatcher.dispatch(
      // The handler keeps the deadline itself: undici's own timeouts would cost each call two
      // timer objects kept alive for up to a second (see `StreamedAnswer`).
      engineRequest(call, headers, call.body as Readable | null, 0),
      new StreamedAnswer(call, start, options, resolve, reject),
    );
  });
}

function reported(error: Error, options: InvokeOptions): Error {
  if (error instanceof EngineError) options.onEngineError?.(error);
  return error;
}

/**
 * undici's handler for one streamed invocation: it writes the engine's answer into the caller's
 * writable and pauses the engine connection while that is full. undici's `stream` API does the
 * same, plus an AsyncResource, `finished()` and a drain listener on every call, which together
 * showed up in profiles of small invocations. Settles once the engine's answer has been handed
 * to the writable in full, or has failed.
 *
 * It also enforces the route's timeout (plus the margin) with one Node timer: for the answer to
 * start (counted again from the end of the request body), then for each next part of the answer,
 * not counting time the caller's full writable holds the answer back, nor an upload the engine
 * takes in at its own pace. undici's `headersTimeout`/`bodyTimeout` would add two of its own
 * timers per call, which it drops only on its next sweep, every half second: under load thousands
 * of them outlived each young-generation collection, which then promoted about four times as
 * many bytes.
 */
class StreamedAnswer implements Dispatcher.DispatchHandler {
  private started = false;
  private lacksRoute = false;
  private timedOut: EngineError | null = null;
  private sink: Writable | null = null;
  private controller: Dispatcher.DispatchController | null = null;
  private readonly deadline: NodeJS.Timeout;
  // Bound once per call, not arrows: tsx names per-request closures at run time.
  private readonly cancel: () => void;
  private readonly resumeEngine: () => void;
  private readonly sinkFailed: (error: Error) => void;

  constructor(
    private readonly call: StreamingEngineCall,
    private readonly starter: ResponseStarter,
    private readonly options: InvokeOptions,
    private readonly resolve: () => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.cancel = this.abortForSignal.bind(this);
    this.resumeEngine = this.resume.bind(this);
    this.sinkFailed = this.abortWith.bind(this);
    call.signal.on("abort", this.cancel);
    this.deadline = setTimeout(this.expire.bind(this), answerTimeoutMs(call, options));
    call.upload?.onceSent(this.restartDeadline.bind(this));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.call.signal.aborted) this.abortForSignal();
    else if (this.timedOut) this.abortWith(this.timedOut);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: ParsedHeaders,
  ): void {
    if (statusCode < 200) return;
    if (engineLacksRoute(statusCode, this.call)) {
      this.lacksRoute = true;
      return;
    }
    this.started = true;
    this.deadline.refresh();
    const sink = this.starter(statusCode, headers);
    // A sink that fails (an async answer too large to hold) stops the engine call.
    sink.on("error", this.sinkFailed);
    this.sink = sink;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.deadline.refresh();
    const sink = this.sink;
    if (sink && !sink.write(chunk)) {
      controller.pause();
      sink.once("drain", this.resumeEngine);
    }
  }

  onResponseEnd(): void {
    clearTimeout(this.deadline);
    this.call.signal.removeListener("abort", this.cancel);
    if (this.lacksRoute) {
      this.reject(reported(routeMissingOnEngine(), this.options));
      return;
    }
    this.sink?.end();
    this.resolve();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    clearTimeout(this.deadline);
    this.call.signal.removeListener("abort", this.cancel);
    if (this.sink && !this.sink.destroyed) this.sink.destroy(error);
    // Once the answer has started, the caller can only cut it short: no error answer to map.
    this.reject(this.started ? error : reported(toEngineError(error, this.call.signal), this.options));
  }

  private abortForSignal(): void {
    const { signal } = this.call;
    this.abortWith(signal.reason instanceof Error ? signal.reason : new Error("invocation cancelled"));
  }

  private abortWith(reason: Error): void {
    // Before the request has a connection, `onRequestStart` sees the cancelled signal instead.
    this.controller?.abort(reason);
  }

  private resume(): void {
    this.deadline.refresh();
    this.controller?.resume();
  }

  /** The body has been handed on: the function gets its whole deadline from here. */
  private restartDeadline(): void {
    // A no-op once the call has settled and cleared the timer.
    this.deadline.refresh();
  }

  private expire(): void {
    // An answer held back by the caller's full writable is the client's pace, and a body the
    // engine is still taking in is not yet the function's turn.
    if (this.controller?.paused || this.call.upload?.movedAtEnginePace()) {
      this.deadline.refresh();
      return;
    }
    this.timedOut = new EngineError(
      "timeout",
      this.started ? "The function's answer stalled" : "The function did not answer in time",
    );
    // Before the request has a connection, `onRequestStart` sees `timedOut` instead.
    this.abortWith(this.timedOut);
  }
}

type ParsedHeaders = Record<string, string | string[] | undefined>;

/** How long the gateway waits for the answer to start, and then for each part of its body. */
const answerTimeoutMs = (call: Pick<EngineCall, "route">, options: InvokeOptions) =>
  call.route.timeout * 1000 + options.timeoutMarginMs;

/**
 * The engine request: its `/r/{app}{path}`, with undici's timeouts set to `timeoutMs` (0: none).
 * One literal of one shape for both paths (undici reads it on every invocation; no spreads).
 */
function engineRequest(
  call: Omit<EngineCall, "headers" | "body" | "signal"> & { signal: CancelSignal },
  headers: Record<string, string> | string[],
  body: Readable | null,
  timeoutMs: number,
) {
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
