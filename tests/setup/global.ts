import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import type { TestProject } from "vitest/node";
import { runMigrations } from "../../db/migrate.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** A database made for this test run, migrated, dropped at the end. */
    dbUri: string;
  }
}

const serverUri = process.env.PICASSO_TEST_MYSQL ?? "mysql://root@127.0.0.1:3306/";

export default async function setup(project: TestProject) {
  const database = `picasso_test_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  const admin = await mysql.createConnection({ uri: serverUri, connectTimeout: 5000 });
  await admin.query(
    `CREATE DATABASE ${mysql.escapeId(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
  );
  const url = new URL(serverUri);
  url.pathname = `/${database}`;
  const dbUri = url.toString();
  await runMigrations(dbUri);
  project.provide("dbUri", dbUri);

  return async function teardown() {
    await admin.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(database)}`);
    await admin.end();
  };
}
