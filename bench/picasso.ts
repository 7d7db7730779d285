/**
 * Picasso as it runs in production (`picasso-api serve`, own process, real MariaDB, real Keystone),
 * with one app and three public routes created through its own management API.
 */
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { KeystoneAdmin, type ProjectWithUsers } from "../tests/support/keystone.ts";
import { type Child, freePort, log, output, repoRoot, start, stop, waitForHttp } from "./children.ts";

export type Picasso = {
  /** The `serve` process measured; replaced by `restartPicasso`. */
  child: Child;
  baseUrl: string;
  projectId: string;
  appName: string;
  /** Member token of the project; never logged. */
  token: string;
  /** `picasso-api serve` arguments without `--port`, for another process of the same Picasso. */
  serveArgs: string[];
};

export class PicassoError extends Error {
  override name = "PicassoError";
}

const cli = `${repoRoot}bin/picasso-api.mjs`;

/** Undo list: filled as things are created, run by `cleanup()` even after a partial start. */
const undo: (() => Promise<void>)[] = [];

export async function cleanupPicasso(): Promise<void> {
  while (undo.length > 0) {
    const step = undo.pop();
    await step?.().catch((error: Error) => log(`cleanup: ${error.message}`));
  }
}

async function stage<T>(name: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw new PicassoError(`${name}: ${(error as Error).message}`);
  }
}

export async function startPicasso(options: { enginePort: number; mysqlUri: string }): Promise<Picasso> {
  const admin = await stage("keystone", () => KeystoneAdmin.connect());
  const creating = admin.createProjectWithUsers(`picasso-bench-${randomBytes(4).toString("hex")}`);
  // Registered before it resolves: a Ctrl-C during the creation still deletes what it made.
  // One at a time: Keystone on SQLite answers 500 to concurrent deletes.
  undo.push(async () => {
    const made = await creating.catch(() => undefined);
    if (!made) return;
    await admin.deleteProject(made.project.id);
    await admin.deleteUser(made.member.id);
    await admin.deleteUser(made.reader.id);
  });
  const cast: ProjectWithUsers = await stage("keystone project", () => creating);

  const database = `picasso_bench_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  const serverUrl = new URL(options.mysqlUri);
  const dbUrl = new URL(serverUrl);
  dbUrl.pathname = `/${database}`;
  const dbUri = dbUrl.toString();
  undo.push(async () => {
    const connection = await mysql.createConnection({ uri: serverUrl.toString(), connectTimeout: 5000 });
    try {
      await connection.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(database)}`);
    } finally {
      await connection.end();
    }
  });
  await stage("migrate", async () => {
    const child = start({
      name: "picasso migrate",
      command: process.execPath,
      args: [cli, "migrate", "--db-uri", dbUri, "--log-level", "WARNING"],
    });
    const { code } = await output(child, 120_000);
    if (code !== 0) throw new Error(`picasso-api migrate exited ${code}`);
  });

  const serveArgs = [
    cli,
    "serve",
    "--host",
    "127.0.0.1",
    "--db-uri",
    dbUri,
    "--functions-url",
    `http://127.0.0.1:${options.enginePort}/v1`,
    "--keystone-endpoint",
    admin.url,
    "--log-level",
    "WARNING",
    "--max-invoke-body",
    "2GiB",
    // One load generator is one client address: limits it can never reach, so the bench
    // measures the limiter's cost on every invocation without being limited.
    "--rate-limit-public",
    "100000",
    "--rate-limit-public-burst",
    "1000000",
    "--rate-limit-private",
    "100000",
    "--rate-limit-private-burst",
    "1000000",
    "--shutdown-timeout",
    "2",
  ];
  const server = await startServe(serveArgs);
  const { baseUrl } = server;
  const token = cast.member.token;
  const projectId = cast.project.id;
  const api = async (path: string, body: unknown) => {
    const response = await fetch(`${baseUrl}/v1/${projectId}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", "x-auth-token": token },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    if (response.status !== 200 && response.status !== 201) {
      throw new Error(`POST /v1/{project}${path} answered ${response.status}: ${text.slice(0, 300)}`);
    }
    return JSON.parse(text) as Record<string, unknown>;
  };
  const created = await stage("create app", () => api("/apps", { app: { name: "bench" } }));
  const appName = (created.app as { name?: unknown } | undefined)?.name;
  if (typeof appName !== "string") {
    throw new PicassoError(`create app: no app.name in ${JSON.stringify(created).slice(0, 300)}`);
  }
  for (const path of ["/hello", "/upload", "/download"]) {
    await stage(`create route ${path}`, () =>
      api(`/apps/${encodeURIComponent(appName)}/routes`, {
        route: { path, image: `bench${path}`, is_public: true },
      }),
    );
  }
  log(`picasso ready on ${baseUrl} (pid ${server.child.pid}), app ${appName}`);
  return { child: server.child, baseUrl, projectId, appName, token, serveArgs };
}

async function startServe(serveArgs: string[]): Promise<{ child: Child; baseUrl: string }> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = start({
    name: "picasso",
    command: process.execPath,
    args: [...serveArgs, "--port", String(port)],
  });
  undo.push(() => stop(child));
  await stage("serve", () => waitForHttp(`${baseUrl}/`, 30_000, child));
  return { child, baseUrl };
}

/**
 * The same Picasso (database, Keystone project, app and routes) served by a new process, the old
 * one stopped: two starts of the same code can differ by a tenth in CPU per request, so each round
 * measures a process of its own.
 */
export async function restartPicasso(picasso: Picasso): Promise<Picasso> {
  const server = await startServe(picasso.serveArgs);
  await stop(picasso.child);
  log(`picasso restarted on ${server.baseUrl} (pid ${server.child.pid})`);
  return { ...picasso, child: server.child, baseUrl: server.baseUrl };
}
