import { defineCommand, runMain } from "citty";
import { version } from "../app/version.ts";
import { devCommand } from "./commands/dev.ts";
import { migrateCommand } from "./commands/migrate.ts";
import { reconcileCommand } from "./commands/reconcile.ts";
import { serveArgs, serveCommand } from "./commands/serve.ts";

const main = defineCommand({
  meta: { name: "picasso-api", version, description: "Picasso: Functions-as-a-Service API for OpenStack" },
  // The serve flags are declared here too, so `picasso-api --port 1234` runs `serve` as before.
  args: serveArgs,
  subCommands: { serve: serveCommand, migrate: migrateCommand, reconcile: reconcileCommand, dev: devCommand },
  default: "serve",
});

await runMain(main);
