import type { Database } from "../../../db/client.ts";
import type { Logger } from "../../lib/logger.ts";
import { EngineError } from "../engine/types.ts";
import { engineFailure, isRetryableLockError, scrubDatabaseError } from "./failures.ts";

export type Transaction = Parameters<Parameters<Database["transaction"]>[0]>[0];

export type WriteStep = {
  tx: Transaction;
  /**
   * Runs one engine write inside the transaction. If it fails, `undo` runs (best effort): the
   * engine may have applied a call that timed out or lost its connection. If it succeeds but the
   * transaction then fails to commit, `undo` runs too. Either way the engine ends as MySQL does.
   */
  engine<T>(write: () => Promise<T>, undo: () => Promise<void>): Promise<T>;
};

const maxAttempts = 3;

/**
 * One write of MySQL and the engine that either lands on both or on neither: MySQL changes are
 * made in a transaction (rows locked with SELECT ... FOR UPDATE), the engine call runs while the
 * locks are held, and the transaction commits only after the engine said yes. Lock conflicts
 * (deadlock victims) retry while the engine has not been touched.
 */
export async function writeThrough<T>(
  db: Database,
  log: Logger,
  work: (step: WriteStep) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const undos: (() => Promise<void>)[] = [];
    let engineTouched = false;
    try {
      return await db.transaction(async (tx) =>
        work({
          tx,
          async engine(write, undo) {
            engineTouched = true;
            try {
              const result = await write();
              undos.push(undo);
              return result;
            } catch (error) {
              await runUndo(log, undo, error);
              throw error instanceof EngineError ? engineFailure(error) : error;
            }
          },
        }),
      );
    } catch (error) {
      for (const undo of undos.reverse()) await runUndo(log, undo, error);
      if (!engineTouched && attempt < maxAttempts && isRetryableLockError(error)) continue;
      throw scrubDatabaseError(error);
    }
  }
}

/** The engine could not be connected to: the call never left this process. */
function neverSent(error: EngineError): boolean {
  const code = (error.cause as { code?: unknown } | undefined)?.code;
  return error.kind === "unavailable" && (code === "ECONNREFUSED" || code === "UND_ERR_CONNECT_TIMEOUT");
}

async function runUndo(log: Logger, undo: () => Promise<void>, reason: unknown): Promise<void> {
  // A conflict means the engine already had the object before this call: not ours to remove;
  // an invalid input was refused before the engine changed anything. Anything else may have changed the engine (a timeout, a lost connection, the second of two
  // PATCHes failing), and every undo is safe to run against an engine that changed nothing.
  if (
    reason instanceof EngineError &&
    (reason.kind === "conflict" || reason.kind === "invalid" || neverSent(reason))
  )
    return;
  try {
    await undo();
  } catch (error) {
    log.warn("could not undo a function engine write; run `picasso-api reconcile --fix`", {
      reason: (reason as Error)?.message,
      error: (error as Error)?.message,
    });
  }
}
