import { readdirSync } from "node:fs";
import { defineCommand } from "citty";
import {
  devOptions,
  loadDevConfig,
  parseFunctionsUrl,
  redactUri,
  type ServeConfig,
} from "../../app/config.ts";
import { createDatabaseIfMissing } from "../../db/client.ts";
import { runMigrations } from "../../db/migrate.ts";
import { cliArgs, givenFlags } from "../args.ts";
import { exitWithError } from "../fail.ts";
import { serveWith } from "./serve.ts";

/** The project the printed commands use: noauth takes the project from the URL, any id works. */
export const demoProject = "demo";

export const devCommand = defineCommand({
  meta: {
    name: "dev",
    description:
      "Try Picasso in one command: local database, no authentication, functions run as local processes (development only)",
  },
  args: cliArgs(devOptions),
  async run({ args }) {
    let config: ServeConfig;
    try {
      config = loadDevConfig(givenFlags(devOptions, args));
    } catch (error) {
      exitWithError(error);
    }
    await serveWith(config, {
      async prepareDatabase(uri, logger) {
        try {
          await createDatabaseIfMissing(uri);
          const { applied } = await runMigrations(uri);
          logger.info("development database ready", { database: redactUri(uri), applied });
        } catch (error) {
          throw new Error(
            `cannot prepare the database ${redactUri(uri)}: ${(error as Error).message}. ` +
              "Start MariaDB (bash scripts/mariadb.sh) or pass --db-uri mysql://user:password@host:3306/database",
          );
        }
      },
      onListening({ host, port }) {
        process.stdout.write(devBanner({ host, port, config }));
      },
    });
  },
});

/** What a newcomer needs on screen: where things are, and commands that work as printed. */
export function devBanner({
  host,
  port,
  config,
}: {
  host: string;
  port: number;
  config: ServeConfig;
}): string {
  const base = `http://${urlHost(host)}:${port}`;
  const app = "hello";
  const appName = `${app}-${demoProject}`;
  const target = parseFunctionsUrl(config["functions-url"]);
  const functions =
    target.kind === "local"
      ? `${listExecutables(target.directory)}  (local processes from ${target.directory})`
      : target.url;
  const json = "-H 'Content-Type: application/json'";
  return [
    "",
    `Picasso (development mode) is listening on ${base}`,
    "",
    "  !!! AUTHENTICATION IS DISABLED: any X-Auth-Token (or none) acts as a member of the project in the URL.",
    "  !!! Functions run as local processes with your user's rights. Never expose this server.",
    "",
    `  API explorer: ${base}/api`,
    `  Functions:    ${functions}`,
    `  Database:     ${redactUri(config["db-uri"])}`,
    "",
    `Try it (project "${demoProject}"; Picasso names the app ${appName}):`,
    "",
    "  # 1. create an app",
    `  curl -s -X POST ${base}/v1/${demoProject}/apps ${json} -d '{"app":{"name":"${app}"}}'`,
    "  # 2. give it a public route that runs examples/functions/hello",
    `  curl -s -X POST ${base}/v1/${demoProject}/apps/${appName}/routes ${json} -d '{"route":{"path":"/hello","image":"hello","is_public":true}}'`,
    "  # 3. invoke it publicly, without a token",
    `  curl -s -X POST ${base}/r/${appName}/hello -d '{"name":"Ada"}'`,
    "  # 4. invoke it privately, as a member of the project (any token works in dev)",
    `  curl -s -X POST ${base}/v1/r/${demoProject}/${appName}/hello -H 'X-Auth-Token: dev'`,
    "",
    "  (On a database that already has them, steps 1 and 2 answer 409: the app and route are still there.)",
    "  Stop with Ctrl-C. Function stderr is logged with --log-level DEBUG.",
    "",
    "",
  ].join("\n");
}

function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "::" || host === "[::]") return "127.0.0.1";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

function listExecutables(directory: string): string {
  try {
    const names = readdirSync(directory, { withFileTypes: true })
      .filter((entry) => (entry.isFile() || entry.isSymbolicLink()) && !entry.name.startsWith("."))
      .map((entry) => entry.name)
      .sort();
    return names.length > 0 ? names.join(", ") : "(none yet)";
  } catch {
    return "(unreadable)";
  }
}
