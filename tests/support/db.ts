import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { inject } from "vitest";
import { createDatabase, type DatabaseHandle } from "../../db/client.ts";

export const testDbUri = () => inject("dbUri");

/** A pool on this run's database; close it in afterAll. */
export function openTestDatabase(): DatabaseHandle {
  return createDatabase(testDbUri(), { connectionLimit: 5 });
}

/** Fresh identifiers keep test files independent while they share one database. */
export const freshId = (prefix = "") => `${prefix}${randomBytes(16).toString("hex")}`.slice(0, 32);

/** A brand-new empty database for tests that need one of their own (migrations); dropped by `drop`. */
export async function scratchDatabase(): Promise<{ uri: string; drop: () => Promise<void> }> {
  const base = new URL(testDbUri());
  const name = `picasso_scratch_${randomBytes(6).toString("hex")}`;
  base.pathname = "/";
  const admin = await mysql.createConnection({ uri: base.toString() });
  await admin.query(`CREATE DATABASE ${mysql.escapeId(name)}`);
  await admin.end();
  const url = new URL(base.toString());
  url.pathname = `/${name}`;
  return {
    uri: url.toString(),
    drop: async () => {
      const connection = await mysql.createConnection({ uri: base.toString() });
      await connection.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(name)}`);
      await connection.end();
    },
  };
}
