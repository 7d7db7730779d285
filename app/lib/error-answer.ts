import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { databaseUnavailable, isDatabaseUnavailable } from "../services/management/failures.ts";
import { ApiError, type ErrorBody, errorBody, toApiError } from "./errors.ts";
import type { Logger } from "./logger.ts";

export type ErrorAnswer = {
  status: ContentfulStatusCode;
  body: ErrorBody;
  headers: Record<string, string>;
};

/**
 * What the client is told about anything thrown while answering it: the app's `onError` and
 * Node's pre-routed invocations both answer through here, so one failure reads the same on both.
 */
export function errorAnswer(caught: unknown, log: Logger): ErrorAnswer {
  // Reads and route lookups meet MySQL outages too; they answer like the writes do.
  const error = isDatabaseUnavailable(caught) ? databaseUnavailable(caught) : caught;
  if (error instanceof HTTPException) {
    const apiError = toApiError(error);
    if (apiError.status >= 500) log.warn("request failed", { code: apiError.code, error: apiError.message });
    return {
      status: apiError.status,
      body: errorBody(apiError.code, apiError.message),
      headers: error instanceof ApiError ? error.headers : {},
    };
  }
  // Anything else is a bug: log it whole, tell the client only that it happened.
  log.error("unhandled error", { error });
  return { status: 500, body: errorBody("internal_error", "Internal server error"), headers: {} };
}
