import type { Database } from "../../../db/client.ts";
import type { Logger } from "../../lib/logger.ts";
import type { AppServices } from "../../types.ts";
import { EngineError } from "../engine/types.ts";
import { repairApp } from "../reconcile/index.ts";
import {
  engineFailure,
  isDatabaseUnavailable,
  isRetryableLockError,
  scrubDatabaseError,
} from "./failures.ts";

export type Transaction = Parameters<Parameters<Database["transaction"]>[0]>[0];

export type WriteStep = {
  tx: Transaction;
  /**
   * Runs one engine write of the engine app `engineApp` inside the transaction. If it fails,
   * `undo` runs (best effort): the engine may have applied a call that timed out or lost its
   * connection. If it succeeds but the transaction then fails to commit, `undo` runs too. Either
   * way the engine ends as MySQL does.
   */
  engine<T>(engineApp: string, write: () => Promise<T>, undo: () => Promise<void>): Promise<T>;
};

type Services = Pick<AppServices, "db" | "logger" | "engine">;

const maxAttempts = 3;

/**
 * One write of MySQL and the engine that either lands on both or on neither: MySQL changes are
 * made in a transaction (rows locked with SELECT ... FOR UPDATE), the engine call runs while the
 * locks are held, and the transaction commits only after the engine said yes. Lock conflicts
 * (deadlock victims) retry while the engine has not been touched.
 */
export async function writeThrough<T>(services: Services, work: (step: WriteStep) => Promise<T>): Promise<T> {
  const log = services.logger;
  for (let attempt = 1; ; attempt++) {
    const undos: (() => Promise<void>)[] = [];
    const engineApps = new Set<string>();
    let engineTouched = false;
    let committing = false;
    try {
      return await services.db.transaction(async (tx) => {
        const result = await work({
          tx,
          async engine(engineApp, write, undo) {
            engineTouched = true;
            engineApps.add(engineApp);
            try {
              const written = await write();
              undos.push(undo);
              return written;
            } catch (error) {
              await runUndo(log, undo, error);
              throw error instanceof EngineError ? engineFailure(error) : error;
            }
          },
        });
        committing = true;
        return result;
      });
    } catch (error) {
      if (committing && undos.length > 0 && isDatabaseUnavailable(error)) {
        await settleUnknownCommit(services, engineApps, error);
      } else {
        for (const undo of undos.reverse()) await runUndo(log, undo, error);
      }
      if (!engineTouched && attempt < maxAttempts && isRetryableLockError(error)) continue;
      throw scrubDatabaseError(error);
    }
  }
}

/** Delays between the attempts to settle a cut-off commit while the client waits for its answer. */
const settleDelaysMs = [200, 400];
/** Then MySQL keeps being asked in the background, backing off to this delay, for this long. */
const settleLaterMaxDelayMs = 30_000;
const settleLaterForMs = 5 * 60_000;

/**
 * The connection died while MySQL was committing (killed, cut off): the commit may have landed or
 * not, so neither keeping nor undoing the engine's change is safe. MySQL, the truth, is asked
 * again on a fresh connection, and the engine's copy of each app touched is made to match it,
 * as `reconcile --fix` would. If MySQL cannot be reached for that within a few attempts, the
 * client gets its answer and the asking goes on in the background for a few minutes, so the
 * engine matches MySQL again soon after an outage ends.
 */
async function settleUnknownCommit(services: Services, engineApps: Set<string>, reason: unknown) {
  for (const engineApp of engineApps) {
    if ((await repaired(services, engineApp)) || (await repairedAfter(services, engineApp, settleDelaysMs))) {
      continue;
    }
    void repairedAfter(services, engineApp, settleLaterDelays()).then((settled) => {
      if (settled) return;
      services.logger.warn(
        "a commit was cut off and MySQL could not be asked whether it landed; run `picasso-api reconcile --fix`",
        { engine_app: engineApp, reason: (reason as Error)?.message },
      );
    });
  }
}

/** One attempt to make the engine's copy of `engineApp` match MySQL. */
async function repaired(services: Services, engineApp: string): Promise<boolean> {
  try {
    await repairApp(services, engineApp);
  } catch {
    return false;
  }
  services.logger.info("a commit was cut off; the engine now matches MySQL", { engine_app: engineApp });
  return true;
}

/** An attempt after each of `delaysMs` until one succeeds; false when none did. */
async function repairedAfter(services: Services, engineApp: string, delaysMs: Iterable<number>) {
  for (const delayMs of delaysMs) {
    // Unref'd: a stopping server does not wait for MySQL; reconcile can finish the job.
    await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
    if (await repaired(services, engineApp)) return true;
  }
  return false;
}

/** 1 s, doubling up to `settleLaterMaxDelayMs`, until `settleLaterForMs` have passed. */
function* settleLaterDelays(): Generator<number> {
  for (
    let delayMs = 1000, waited = 0;
    waited < settleLaterForMs;
    delayMs = Math.min(delayMs * 2, settleLaterMaxDelayMs)
  ) {
    waited += delayMs;
    yield delayMs;
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
