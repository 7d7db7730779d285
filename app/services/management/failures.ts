import { ApiError } from "../../lib/errors.ts";
import { EngineError } from "../engine/types.ts";

/** mysql2's error code (ER_DUP_ENTRY, ...) even when drizzle wrapped the error. */
export function mysqlCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("ER_")) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export const isDuplicateKey = (error: unknown) => mysqlCode(error) === "ER_DUP_ENTRY";
/** Lock conflicts MySQL resolves by aborting one transaction; safe to retry before the engine was called. */
export const isRetryableLockError = (error: unknown) => {
  const code = mysqlCode(error);
  return code === "ER_LOCK_DEADLOCK" || code === "ER_LOCK_WAIT_TIMEOUT";
};

/**
 * How an engine failure reaches clients: unreachable 503, too slow 504, anything else 502 with the
 * engine's own message so operators can see what it said.
 */
export function engineFailure(error: EngineError): ApiError {
  switch (error.kind) {
    case "unavailable":
      return new ApiError("service_unavailable", `Function engine unavailable: ${error.message}`, {
        cause: error,
      });
    case "timeout":
      return new ApiError("gateway_timeout", `Function engine timed out: ${error.message}`, { cause: error });
    case "invalid":
      // The tenant's input cannot run on this engine; the driver's message names the field.
      return new ApiError("validation_failed", `Invalid json: ${error.message}`, { cause: error });
    default:
      return new ApiError("engine_error", `Function engine error: ${error.message}`, { cause: error });
  }
}

/**
 * Database errors that are not the API's business: replaced by a plain error, because drizzle's
 * message carries the query's parameters (config values may be secrets) into the logs.
 */
export function scrubDatabaseError(error: unknown): unknown {
  if (error instanceof ApiError || error instanceof EngineError) return error;
  const code = mysqlCode(error);
  if (!code && !(error instanceof Error && error.name === "DrizzleQueryError")) return error;
  const cause = (error as { cause?: { sqlMessage?: unknown } }).cause;
  const detail = typeof cause?.sqlMessage === "string" ? cause.sqlMessage : "";
  return new DatabaseError(code, `database error ${code ?? ""} ${detail}`.trim());
}

/** A MySQL failure with its code kept (ER_DUP_ENTRY, ...) and its query parameters dropped. */
export class DatabaseError extends Error {
  override name = "DatabaseError";
  constructor(
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}
