import type { Readable, Writable } from "node:stream";

/**
 * What Picasso needs from a function engine. Management and invocation code talk to this
 * interface only; `--functions-url` picks the driver (IronFunctions over HTTP, or local).
 */

export type RouteType = "sync" | "async";
export type RouteFormat = "default" | "http";

/** An app as the engine knows it: `name` is the engine's name, not the tenant's. */
export type EngineApp = {
  name: string;
  config: Record<string, string>;
};

/** A route as the engine knows it (a subset of what Picasso stores). */
export type EngineRoute = {
  path: string;
  image: string;
  type: RouteType;
  format: RouteFormat;
  memory: number;
  timeout: number;
  idleTimeout: number;
  maxConcurrency: number;
  headers: Record<string, string[]>;
  config: Record<string, string>;
};

/** One invocation, as the gateway hands it over; the body is never buffered on the way. */
export type EngineCall = {
  engineApp: string;
  /**
   * The app's config as Picasso stores it. Engines that keep their own copy (IronFunctions)
   * ignore it; the local runner builds the function's environment from it, so it needs no state.
   */
  appConfig: Record<string, string>;
  /**
   * The URL the client called (`/r/...` or `/v1/r/...`, on `--public-url` if set), raw path and
   * query. The local runner hands it to the function as REQUEST_URL; IronFunctions makes its own.
   */
  requestUrl?: string;
  route: EngineRoute;
  method: string;
  /** Path below the app, e.g. `/hello/world`; equals `route.path` today. */
  path: string;
  /** Raw query string without `?`, passed through unchanged. */
  query: string;
  headers: Headers;
  /**
   * The route opted in (`forward_auth_headers`): the client's `Authorization` and `Cookie` reach
   * the function. `X-Auth-Token` never does.
   */
  forwardAuthHeaders?: boolean;
  body: ReadableStream<Uint8Array> | null;
  requestId: string;
  /** Aborted when the client goes away or the gateway's deadline passes. */
  signal: AbortSignal;
};

/**
 * The same call for drivers that can stream straight between Node sockets: headers as received
 * (flat name/value list) and the request body as a Node stream, so nothing is converted to web
 * streams on the hot path.
 */
export type StreamingEngineCall = Omit<EngineCall, "headers" | "body" | "signal"> & {
  rawHeaders: readonly string[];
  body: Readable | AsyncIterable<Uint8Array> | null;
  /** How the request body is moving, for the route's deadline; null without a body. */
  upload: UploadProgress | null;
  signal: CancelEmitter;
};

/**
 * The request body's progress as the route's deadline needs it: the deadline is held while the
 * engine takes the body in at its own pace and starts again once the body has been handed on. A
 * body the client paces counts against it.
 */
export interface UploadProgress {
  /** Whether the body moved since the last call, at the engine's pace rather than the client's. */
  movedAtEnginePace(): boolean;
  /** Calls `listener` once the whole body has been handed on (at once if it has been). */
  onceSent(listener: () => void): void;
}

/**
 * Cancels a call: an AbortSignal, or an emitter-like object that fires `abort` once. The hot path
 * uses the latter: an AbortController per request costs more than the whole route lookup, most of
 * it in EventTarget listener bookkeeping.
 */
export type CancelSignal = AbortSignal | CancelEmitter;

/** What the streaming engine call uses of its signal: one `abort` listener, added and removed. */
export interface CancelEmitter {
  readonly aborted: boolean;
  readonly reason?: unknown;
  on(event: "abort", listener: () => void): unknown;
  removeListener(event: "abort", listener: () => void): unknown;
}

/** Called once with the engine's status and headers; returns where its body is written. */
export type ResponseStarter = (
  status: number,
  headers: Record<string, string | string[] | undefined>,
) => Writable;

export interface FunctionEngine {
  /** `ironfunctions`, `local`, ...: for logs and readiness only, never for branching. */
  readonly kind: string;
  createApp(app: EngineApp): Promise<void>;
  /** Makes the engine's config equal `next`; `previous` lets drivers compute a minimal change. */
  updateAppConfig(
    name: string,
    next: Record<string, string>,
    previous: Record<string, string>,
  ): Promise<void>;
  deleteApp(name: string): Promise<void>;
  listApps(): Promise<EngineApp[]>;
  createRoute(app: string, route: EngineRoute): Promise<void>;
  /** Makes the engine's route equal `next`; drivers with merge semantics diff against `previous`. */
  updateRoute(app: string, next: EngineRoute, previous: EngineRoute): Promise<void>;
  deleteRoute(app: string, path: string): Promise<void>;
  listRoutes(app: string): Promise<EngineRoute[]>;
  invoke(call: EngineCall): Promise<Response>;
  /**
   * Optional fast path used when Picasso runs on Node: the driver writes the engine's response
   * into the `Writable` that `start` returns, with backpressure. Rejects with EngineError when the
   * engine fails before `start` was called; a failure after it ends the client's response.
   */
  invokeStreaming?(call: StreamingEngineCall, start: ResponseStarter): Promise<void>;
  /** Resolves when the engine answers; for readiness checks. */
  ping(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export type EngineErrorKind =
  /** Connection refused, reset, DNS, TLS: the engine could not be reached (503 to clients). */
  | "unavailable"
  /** No answer in time (504). */
  | "timeout"
  /** The engine answered with an error we did not expect (502, with its message). */
  | "failed"
  /** The engine refused the request as invalid (a gateway bug or drift; 502 with its message). */
  | "rejected"
  /**
   * The tenant's input cannot work on this engine (e.g. the local runner refuses an `image` that
   * escapes its functions directory): management answers 400 with the driver's message, which
   * names the field. Nothing was changed on the engine.
   */
  | "invalid"
  | "not_found"
  | "conflict";

export class EngineError extends Error {
  override name = "EngineError";
  constructor(
    readonly kind: EngineErrorKind,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
