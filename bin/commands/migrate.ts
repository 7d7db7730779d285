import { defineCommand } from "citty";
import { loadMigrateConfig, migrateOptions, redactUri } from "../../app/config.ts";
import { createLogger, createLogSink } from "../../app/lib/logger.ts";
import { createDatabaseIfMissing } from "../../db/client.ts";
import { runMigrations } from "../../db/migrate.ts";
import { cliArgs, givenFlags } from "../args.ts";
import { exitWithError } from "../fail.ts";

export const migrateCommand = defineCommand({
  meta: { name: "migrate", description: "Create the database if needed and apply pending migrations" },
  args: cliArgs(migrateOptions),
  async run({ args }) {
    let config: ReturnType<typeof loadMigrateConfig>;
    try {
      config = loadMigrateConfig(givenFlags(migrateOptions, args));
    } catch (error) {
      exitWithError(error);
    }
    const sink = createLogSink(config["log-file"]);
    const logger = createLogger({ level: config["log-level"], format: config["log-format"], sink });
    try {
      await createDatabaseIfMissing(config["db-uri"]);
      const { applied } = await runMigrations(config["db-uri"]);
      logger.info("database schema is current", { database: redactUri(config["db-uri"]), applied });
      await sink.close();
    } catch (error) {
      logger.error("migration failed", { error: (error as Error).message });
      await sink.close();
      exitWithError(`migration failed: ${(error as Error).message}`);
    }
  },
});
