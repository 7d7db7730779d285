import { HTTPException } from "hono/http-exception";
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
/**
 * A deadlock MySQL resolved by aborting this transaction: safe to retry before the engine was
 * called. A lock wait timeout is not retried: the rows are held by a write waiting for a slow
 * engine, and waiting again would only keep the client waiting longer.
 */
export const isRetryableLockError = (error: unknown) => mysqlCode(error) === "ER_LOCK_DEADLOCK";

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
 * Failures of the connection to MySQL rather than of a query: refused, reset, timed out, killed
 * (`KILL`), the server shutting down or full, the pool's queue full. mysql2 marks every error
 * that ends a connection `fatal` (network errors included); the codes are the server's own.
 * Engine and API errors are never database errors, whatever network code their causes carry.
 */
const connectionCodes = new Set([
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ER_CONNECTION_KILLED",
  "ER_SERVER_SHUTDOWN",
  "ER_CON_COUNT_ERROR",
  "ER_QUERY_INTERRUPTED",
  "ER_CLIENT_INTERACTION_TIMEOUT",
]);
/** MariaDB's "Connection was killed", which mysql2 has no name for. */
const connectionKilledErrno = 1927;
const poolMessages = new Set(["Queue limit reached.", "Pool is closed."]);

export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    if (current instanceof HTTPException || current instanceof EngineError) return false;
    const { code, errno, fatal, message } = current as {
      code?: unknown;
      errno?: unknown;
      fatal?: unknown;
      message?: unknown;
    };
    if (fatal === true || errno === connectionKilledErrno) return true;
    if (typeof code === "string" && connectionCodes.has(code)) return true;
    if (typeof message === "string" && poolMessages.has(message)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * The one answer for "MySQL is not there": 503 with a short retry hint, never a 500, and no
 * driver message (it can carry host names and query parameters).
 */
export function databaseUnavailable(error: unknown): ApiError {
  const reason = connectionErrorCode(error);
  return new ApiError(
    "database_unavailable",
    `The database is unavailable${reason ? ` (${reason})` : ""}; try again later`,
    { headers: { "Retry-After": "1" } },
  );
}

function connectionErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const { code, errno } = current as { code?: unknown; errno?: unknown };
    if (typeof code === "string" && /^[A-Z][A-Z0-9_]{1,63}$/.test(code)) return code;
    if (errno === connectionKilledErrno) return "ER_CONNECTION_KILLED";
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Database errors that are not the API's business: replaced by a plain error, because drizzle's
 * message carries the query's parameters (config values may be secrets) into the logs.
 */
export function scrubDatabaseError(error: unknown): unknown {
  if (error instanceof ApiError || error instanceof EngineError) return error;
  if (isDatabaseUnavailable(error)) return databaseUnavailable(error);
  const code = mysqlCode(error);
  // Rows held by a write waiting for a slow engine (or a deadlock that outlived its retries).
  if (code === "ER_LOCK_WAIT_TIMEOUT" || code === "ER_LOCK_DEADLOCK") {
    return new ApiError(
      "service_unavailable",
      "Another change to the same app is still in progress; try again",
      {
        headers: { "Retry-After": "1" },
      },
    );
  }
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
