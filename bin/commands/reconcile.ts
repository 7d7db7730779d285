import { defineCommand } from "citty";
import {
  engineOptions,
  functionBaseEnv,
  loadReconcileConfig,
  type ReconcileConfig,
  reconcileOptions,
} from "../../app/config.ts";
import { createLogger, createLogSink } from "../../app/lib/logger.ts";
import { createEngine } from "../../app/services/engine/index.ts";
import { describeDrift, findDrift, fixDrift } from "../../app/services/reconcile/index.ts";
import { createDatabase } from "../../db/client.ts";
import { checkSchema } from "../../db/migrate.ts";
import { cliArgs, givenFlags } from "../args.ts";
import { exitWithError } from "../fail.ts";

/** Exit codes: scripts and monitoring tell "in sync" from "drift" from "could not check". */
export const reconcileExit = { clean: 0, drift: 1, error: 2 } as const;

/**
 * Compares MySQL with the function engine and prints one line per difference; with `fix`, makes
 * the engine match MySQL and checks again. Returns the exit code.
 */
export async function reconcileWith(
  config: ReconcileConfig,
  options: { fix: boolean; write?: (line: string) => void },
): Promise<number> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const sink = createLogSink(config["log-file"]);
  const logger = createLogger({ level: config["log-level"], format: config["log-format"], sink });
  const database = createDatabase(config["db-uri"], { connectionLimit: 2 });
  const engine = createEngine(config["functions-url"], {
    logger,
    baseEnv: functionBaseEnv(),
    ironFunctions: engineOptions(config),
  });
  try {
    const schema = await checkSchema(database.pool);
    if (schema.state !== "current" && schema.state !== "ahead") {
      throw new Error("database schema is missing or older than this code: run `picasso-api migrate` first");
    }
    const drift = await findDrift({ db: database.db, engine });
    if (!options.fix) {
      for (const item of drift) write(describeDrift(item));
      write(drift.length === 0 ? "in sync" : `${drift.length} difference(s); run with --fix to repair`);
      return drift.length === 0 ? reconcileExit.clean : reconcileExit.drift;
    }
    for (const outcome of await fixDrift({ db: database.db, engine, logger }, drift)) {
      const detail = outcome.error ? `: ${outcome.error}` : "";
      write(`${describeDrift(outcome.drift)} -> ${outcome.result}${detail}`);
    }
    const remaining = await findDrift({ db: database.db, engine });
    for (const item of remaining) write(`still: ${describeDrift(item)}`);
    write(
      remaining.length === 0
        ? `in sync (${drift.length} difference(s) repaired)`
        : `${remaining.length} difference(s) remain`,
    );
    return remaining.length === 0 ? reconcileExit.clean : reconcileExit.drift;
  } catch (error) {
    logger.error("reconcile failed", { error: (error as Error).message });
    write(`error: ${(error as Error).message}`);
    return reconcileExit.error;
  } finally {
    await engine.close().catch(() => {});
    await database.close().catch(() => {});
    await sink.close();
  }
}

export const reconcileCommand = defineCommand({
  meta: {
    name: "reconcile",
    description:
      "Compare MySQL with the function engine (exit 0 in sync, 1 drift, 2 error); --fix makes the engine match MySQL",
  },
  args: {
    ...cliArgs(reconcileOptions),
    fix: {
      type: "boolean",
      description:
        "Repair: MySQL wins. Engine apps MySQL does not know are deleted only if named like Picasso's (pc-...). Exit 0 if in sync afterwards, 1 if drift remains",
      default: false,
    },
  },
  async run({ args }) {
    let config: ReconcileConfig;
    try {
      config = loadReconcileConfig(givenFlags(reconcileOptions, args));
    } catch (error) {
      exitWithError(error);
    }
    process.exit(await reconcileWith(config, { fix: args.fix === true }));
  },
});
