import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/mysql2";
import { migrate } from "drizzle-orm/mysql2/migrator";
import mysql from "mysql2/promise";

export const migrationsFolder = fileURLToPath(new URL("./migrations", import.meta.url));
export const migrationsTable = "__drizzle_migrations";
const lockName = "picasso.migrate";
const lockWaitSeconds = 120;

type Journal = { entries: { idx: number; when: number; tag: string }[] };

async function readJournal(): Promise<Journal> {
  return JSON.parse(await readFile(`${migrationsFolder}/meta/_journal.json`, "utf8")) as Journal;
}

/**
 * Applies pending migrations under a MySQL named lock, so two `migrate` runs at once (two
 * deploy jobs, two containers) apply each migration exactly once.
 */
export async function runMigrations(uri: string): Promise<{ applied: number }> {
  const connection = await mysql.createConnection({ uri, connectTimeout: 5000, timezone: "Z" });
  try {
    const [lockRows] = await connection.query<mysql.RowDataPacket[]>("SELECT GET_LOCK(?, ?) AS got", [
      lockName,
      lockWaitSeconds,
    ]);
    if (lockRows[0]?.got !== 1) throw new Error(`another migration held the lock for ${lockWaitSeconds} s`);
    try {
      const before = await appliedMigrationCount(connection);
      await migrate(drizzle(connection), { migrationsFolder, migrationsTable });
      const after = await appliedMigrationCount(connection);
      return { applied: after - before };
    } finally {
      await connection.query("SELECT RELEASE_LOCK(?)", [lockName]);
    }
  } finally {
    await connection.end();
  }
}

async function appliedMigrationCount(connection: mysql.Connection): Promise<number> {
  const [tables] = await connection.query<mysql.RowDataPacket[]>("SHOW TABLES LIKE ?", [migrationsTable]);
  if (tables.length === 0) return 0;
  const [rows] = await connection.query<mysql.RowDataPacket[]>(
    `SELECT COUNT(*) AS n FROM ${mysql.escapeId(migrationsTable)}`,
  );
  return Number(rows[0]?.n ?? 0);
}

export type SchemaState =
  | { state: "current" }
  | { state: "missing" }
  | { state: "behind"; applied: number; expected: number }
  | { state: "ahead"; applied: number; expected: number };

/** Compares the migrations recorded in the database with those shipped with this code. */
export async function checkSchema(pool: mysql.Pool): Promise<SchemaState> {
  const journal = await readJournal();
  const expectedLatest = Math.max(...journal.entries.map((entry) => entry.when));
  const [tables] = await pool.query<mysql.RowDataPacket[]>("SHOW TABLES LIKE ?", [migrationsTable]);
  if (tables.length === 0) return { state: "missing" };
  const [rows] = await pool.query<mysql.RowDataPacket[]>(
    `SELECT COUNT(*) AS n, MAX(created_at) AS latest FROM ${mysql.escapeId(migrationsTable)}`,
  );
  const applied = Number(rows[0]?.n ?? 0);
  const latest = Number(rows[0]?.latest ?? 0);
  const expected = journal.entries.length;
  if (applied === 0) return { state: "missing" };
  if (latest < expectedLatest) return { state: "behind", applied, expected };
  if (latest > expectedLatest) return { state: "ahead", applied, expected };
  return { state: "current" };
}
