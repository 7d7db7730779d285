import { drizzle, type MySql2Database } from "drizzle-orm/mysql2";
import mysql from "mysql2/promise";
import * as schema from "./schema.ts";

export type Database = MySql2Database<typeof schema>;

export type DatabaseHandle = {
  db: Database;
  pool: mysql.Pool;
  close: () => Promise<void>;
};

export type PoolOptions = {
  connectionLimit?: number;
  /** Fails fast when MySQL is down instead of queueing requests behind a dead pool. */
  connectTimeoutMs?: number;
  /**
   * Seconds a statement waits for a row lock before failing (InnoDB's default is 50). Writes hold
   * their rows' locks while they call the function engine; a hung engine must not make every
   * other write of the same app queue for that long.
   */
  lockWaitTimeoutS?: number;
};

/** `uri` must already be normalised (see normaliseDbUri). */
export function createDatabase(uri: string, options: PoolOptions = {}): DatabaseHandle {
  const pool = mysql.createPool({
    uri,
    connectionLimit: options.connectionLimit ?? 10,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    // DATETIME columns hold UTC; without this the driver converts through the process's zone.
    timezone: "Z",
    enableKeepAlive: true,
    waitForConnections: true,
    queueLimit: 1000,
    charset: "utf8mb4",
  });
  // Sessions compute CURRENT_TIMESTAMP in UTC too.
  const lockWait =
    options.lockWaitTimeoutS === undefined
      ? ""
      : `, innodb_lock_wait_timeout = ${Math.max(1, Math.ceil(options.lockWaitTimeoutS))}`;
  pool.on("connection", (connection) => {
    connection.query(`SET time_zone = '+00:00'${lockWait}`);
  });
  const db = drizzle(pool, { schema, mode: "default" });
  return { db, pool, close: () => pool.end() };
}

/** A connection without a database, to create or drop one. */
export async function withServerConnection<T>(
  uri: string,
  work: (connection: mysql.Connection, database: string) => Promise<T>,
): Promise<T> {
  const url = new URL(uri);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  url.pathname = "/";
  const connection = await mysql.createConnection({ uri: url.toString(), connectTimeout: 5000 });
  try {
    return await work(connection, database);
  } finally {
    await connection.end();
  }
}

export async function createDatabaseIfMissing(uri: string): Promise<void> {
  await withServerConnection(uri, async (connection, database) => {
    await connection.query(
      `CREATE DATABASE IF NOT EXISTS ${mysql.escapeId(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    );
  });
}
