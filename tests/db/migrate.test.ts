import { execFile } from "node:child_process";
import { promisify } from "node:util";
import mysql from "mysql2/promise";
import { afterEach, describe, expect, it } from "vitest";
import { createDatabase } from "../../db/client.ts";
import { checkSchema, runMigrations } from "../../db/migrate.ts";
import { scratchDatabase } from "../support/db.ts";

const run = promisify(execFile);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function describeSchema(uri: string): Promise<string[]> {
  const connection = await mysql.createConnection({ uri });
  try {
    const [tables] = await connection.query<mysql.RowDataPacket[]>("SHOW TABLES");
    const statements: string[] = [];
    for (const row of tables) {
      const table = String(Object.values(row)[0]);
      if (table === "__drizzle_migrations") continue;
      const [create] = await connection.query<mysql.RowDataPacket[]>(
        `SHOW CREATE TABLE ${mysql.escapeId(table)}`,
      );
      statements.push(String(create[0]?.["Create Table"]).replace(/ AUTO_INCREMENT=\d+/, ""));
    }
    return statements.sort();
  } finally {
    await connection.end();
  }
}

describe("migrations", () => {
  it("apply to an empty database, then do nothing the second time", async () => {
    const scratch = await scratchDatabase();
    cleanups.push(scratch.drop);
    const first = await runMigrations(scratch.uri);
    expect(first.applied).toBeGreaterThan(0);
    const second = await runMigrations(scratch.uri);
    expect(second.applied).toBe(0);
    const schema = await describeSchema(scratch.uri);
    expect(schema.some((statement) => statement.includes("CREATE TABLE `apps`"))).toBe(true);
    expect(schema.some((statement) => statement.includes("CREATE TABLE `routes`"))).toBe(true);
  });

  it("are applied once when two runs race", async () => {
    const scratch = await scratchDatabase();
    cleanups.push(scratch.drop);
    const results = await Promise.all([runMigrations(scratch.uri), runMigrations(scratch.uri)]);
    const applied = results.map((result) => result.applied).sort();
    expect(applied[0]).toBe(0);
    expect(applied[1]).toBeGreaterThan(0);
  });

  it("let the server tell a missing schema from a current one", async () => {
    const scratch = await scratchDatabase();
    cleanups.push(scratch.drop);
    const handle = createDatabase(scratch.uri);
    cleanups.push(handle.close);
    expect((await checkSchema(handle.pool)).state).toBe("missing");
    await runMigrations(scratch.uri);
    expect((await checkSchema(handle.pool)).state).toBe("current");
  });

  it("give the same schema through drizzle-kit migrate with PICASSO_MIGRATIONS_DB", async () => {
    const [viaCli, viaKit] = [await scratchDatabase(), await scratchDatabase()];
    cleanups.push(viaCli.drop, viaKit.drop);
    await runMigrations(viaCli.uri);
    const kitUri = viaKit.uri.replace("mysql://", "mysql+pymysql://");
    await run("npx", ["drizzle-kit", "migrate"], { env: { ...process.env, PICASSO_MIGRATIONS_DB: kitUri } });
    expect(await describeSchema(viaKit.uri)).toEqual(await describeSchema(viaCli.uri));
    // And the server accepts a database migrated by drizzle-kit as current.
    const handle = createDatabase(viaKit.uri);
    cleanups.push(handle.close);
    expect((await checkSchema(handle.pool)).state).toBe("current");
  }, 60_000);
});
