import { Pool } from "undici";
import { EngineError } from "../types.ts";
import { createBearerSigner } from "./jwt.ts";

export type EngineHttpOptions = {
  /** `--functions-url`: `http(s)://host:port/v1`; API calls go below it, `/version` to its origin. */
  url: string;
  /** HS256 key of an engine started with JWT_AUTH_KEY; every call then carries a bearer token. */
  jwtKey?: string;
  /** Time to open a TCP (and TLS) connection; past it the engine counts as unreachable. */
  connectTimeoutMs?: number;
  /** Default deadline of one call, from sending to the last byte of the answer. */
  requestTimeoutMs?: number;
  /** Kept-alive connections to the engine (management and invocation share them). */
  connections?: number;
  keepAliveTimeoutMs?: number;
  /** Sees every failed call (for the engine-error metric); must not throw. */
  onError?: (error: EngineError) => void;
};

export type EngineRequest = {
  method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE" | "HEAD";
  /** Below the API base (`/apps/x`), or from the origin's root when `root` is set (`/version`). */
  path: string;
  root?: boolean;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  timeoutMs?: number;
};

export type EngineResponse = { status: number; body: unknown; text: string };

export const defaultEngineTimeouts = { connectMs: 3_000, requestMs: 10_000 } as const;

/**
 * HTTP to the engine over one keep-alive pool: deadlines per call, JSON in and out, and every
 * failure turned into an EngineError whose kind says how clients should see it.
 */
export class EngineHttp {
  readonly origin: string;
  readonly basePath: string;
  readonly pool: Pool;
  private readonly requestTimeoutMs: number;
  private readonly bearer: (() => Promise<string>) | undefined;
  private readonly onError: ((error: EngineError) => void) | undefined;

  constructor(options: EngineHttpOptions) {
    const url = new URL(options.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error("the functions URL must be http(s)://host:port/v1");
    }
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.requestTimeoutMs = options.requestTimeoutMs ?? defaultEngineTimeouts.requestMs;
    this.bearer = options.jwtKey ? createBearerSigner(options.jwtKey) : undefined;
    this.onError = options.onError;
    this.pool = new Pool(this.origin, {
      connections: options.connections ?? 16,
      connectTimeout: options.connectTimeoutMs ?? defaultEngineTimeouts.connectMs,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 10_000,
      // Deadlines are per call (see request); these only bound a call that forgot to set one.
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
    });
  }

  /** Headers every call to the engine needs (the bearer token when the engine checks one). */
  async authHeaders(): Promise<Record<string, string>> {
    return this.bearer ? { authorization: `Bearer ${await this.bearer()}` } : {};
  }

  /** Full path on the origin for an API path, e.g. `/apps` -> `/v1/apps`. */
  apiPath(path: string): string {
    return `${this.basePath}${path}`;
  }

  async request(request: EngineRequest): Promise<EngineResponse> {
    const timeoutMs = request.timeoutMs ?? this.requestTimeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = request.signal ? AbortSignal.any([request.signal, deadline]) : deadline;
    const path = request.root ? request.path : this.apiPath(request.path);
    const headers: Record<string, string> = {
      accept: "application/json",
      ...(await this.authHeaders()),
      ...request.headers,
    };
    let body: string | undefined;
    if (request.body !== undefined) {
      body = JSON.stringify(request.body);
      headers["content-type"] = "application/json";
    }
    try {
      const response = await this.pool.request({
        method: request.method,
        path,
        headers,
        body,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await response.body.text();
      return { status: response.statusCode, body: parseJson(text), text };
    } catch (error) {
      throw this.failed(
        transportError(error, { deadlineHit: deadline.aborted, timeoutMs, method: request.method, path }),
      );
    }
  }

  /** Reports a failure to the onError hook and hands it back for throwing. */
  failed(error: EngineError): EngineError {
    this.onError?.(error);
    return error;
  }

  /** A call that must succeed: any status outside 2xx becomes an EngineError. */
  async json(request: EngineRequest): Promise<unknown> {
    const response = await this.request(request);
    if (response.status >= 200 && response.status < 300) return response.body;
    throw this.failed(statusError(response, `${request.method} ${request.path}`));
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const unreachableCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_DESTROYED",
]);

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Socket-level failures: unreachable (503 to clients) or too slow (504). */
export function transportError(
  error: unknown,
  context: { deadlineHit: boolean; timeoutMs: number; method: string; path: string },
): EngineError {
  if (error instanceof EngineError) return error;
  const code = errorCode(error);
  const what = `${context.method} ${context.path}`;
  if (context.deadlineHit || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
    return new EngineError(
      "timeout",
      `function engine did not answer ${what} within ${context.timeoutMs} ms`,
      undefined,
      {
        cause: error,
      },
    );
  }
  if (code && unreachableCodes.has(code)) {
    return new EngineError("unavailable", `function engine unreachable (${code})`, undefined, {
      cause: error,
    });
  }
  if ((error as { name?: string })?.name === "AbortError" || code === "UND_ERR_ABORTED") {
    return new EngineError("timeout", `call to the function engine aborted: ${what}`, undefined, {
      cause: error,
    });
  }
  return new EngineError(
    "unavailable",
    `function engine unreachable: ${(error as Error)?.message ?? String(error)}`,
    undefined,
    {
      cause: error,
    },
  );
}

/** The engine's own words, without its `validation failure list:` wrapping. */
export function engineMessage(response: Pick<EngineResponse, "body" | "text" | "status">): string {
  const body = response.body as { error?: unknown; message?: unknown } | string | undefined;
  let message: string | undefined;
  if (typeof body === "string") message = body;
  else if (body && typeof body === "object") {
    const error = body.error;
    if (typeof error === "string") message = error;
    else if (
      error &&
      typeof error === "object" &&
      typeof (error as { message?: unknown }).message === "string"
    ) {
      message = (error as { message: string }).message;
    } else if (typeof body.message === "string") message = body.message;
  }
  message ??= response.text.trim() || `HTTP ${response.status}`;
  return message
    .replace(/validation failure list:\s*/g, "")
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .join("; ")
    .slice(0, 500);
}

export function statusError(response: EngineResponse, what: string): EngineError {
  const message = engineMessage(response);
  const status = response.status;
  if (status === 404) return new EngineError("not_found", message, status);
  if (status === 409) return new EngineError("conflict", message, status);
  if (status === 400 || status === 422) return new EngineError("rejected", message, status);
  if (status === 401 || status === 403) {
    return new EngineError(
      "failed",
      `function engine refused Picasso's credentials (${what}): ${message}`,
      status,
    );
  }
  return new EngineError("failed", message, status);
}
