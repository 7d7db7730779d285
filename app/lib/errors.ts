import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Every error the API can answer, and the one status each maps to. */
export const errorStatuses = {
  bad_request: 400,
  validation_failed: 400,
  malformed_json: 400,
  unauthorized: 401,
  forbidden: 403,
  quota_exceeded: 403,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  /** The project's concurrent-invocations quota is in use: retry shortly. */
  concurrency_quota_exceeded: 429,
  /** An invocation over its route's rate limit (with `Retry-After` and `X-RateLimit-*`). */
  rate_limited: 429,
  request_header_fields_too_large: 431,
  internal_error: 500,
  /** The tenant's function failed (non-zero exit, missing executable): its fault, not Picasso's. */
  function_error: 500,
  engine_error: 502,
  bad_gateway: 502,
  service_unavailable: 503,
  /** MySQL cannot be reached or dropped the connection: nothing was changed, retry later. */
  database_unavailable: 503,
  gateway_timeout: 504,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof errorStatuses;

export type ErrorBody = { error: { message: string; code: ErrorCode } };

/**
 * The one way handlers and middleware fail a request. Thrown, it reaches `onError`, which answers
 * `{"error": {"message", "code"}}`: `error.message` is what OpenStack clients print.
 */
export class ApiError extends HTTPException {
  readonly code: ErrorCode;
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(errorStatuses[code], { message, cause: options.cause });
    this.code = code;
    this.headers = options.headers ?? {};
  }
}

export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { message, code } };
}

/** Builds the JSON error response without throwing, for code that answers directly (e.g. streams). */
export function errorResponse(
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(errorBody(code, message)), {
    status: errorStatuses[code],
    headers: { "content-type": "application/json", ...headers },
  });
}

const codeForStatus: Partial<Record<number, ErrorCode>> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  408: "request_timeout",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "too_many_requests",
  431: "request_header_fields_too_large",
  502: "bad_gateway",
  503: "service_unavailable",
  504: "gateway_timeout",
};

/** Maps Hono's own HTTPExceptions (body parsing, etc.) onto the API's codes. */
export function toApiError(error: HTTPException): ApiError {
  if (error instanceof ApiError) return error;
  const code = codeForStatus[error.status] ?? "internal_error";
  const message =
    error.status === 400 && /json/i.test(error.message)
      ? "Malformed JSON in request body"
      : error.message || "Request failed";
  return new ApiError(code === "bad_request" && /json/i.test(message) ? "malformed_json" : code, message);
}
