import { defineConfig } from "drizzle-kit";
import { migrationsDbUri } from "./app/config.ts";

// `generate` needs no database; `migrate` and friends read PICASSO_MIGRATIONS_DB, as alembic did.
const needsDatabase = !process.argv.includes("generate");

export default defineConfig({
  dialect: "mysql",
  schema: "./db/schema.ts",
  out: "./db/migrations",
  dbCredentials: { url: needsDatabase ? migrationsDbUri() : "mysql://unused@localhost/unused" },
  migrations: { table: "__drizzle_migrations" },
});
