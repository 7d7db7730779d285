/**
 * The management API as tests use it: the real app over the test MariaDB, the IronFunctions driver
 * talking HTTP to the IronFunctions test server, and real Keystone tokens checked by the Keystone
 * authenticator against the real Keystone.
 */
import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import { silentLogger } from "../../app/lib/logger.ts";
import {
  createIronFunctionsEngine,
  type IronFunctionsEngine,
} from "../../app/services/engine/ironfunctions/index.ts";
import { KeystoneAuthenticator } from "../../app/services/keystone/authenticator.ts";
import type { AppServices } from "../../app/types.ts";
import { createDatabase } from "../../db/client.ts";
import { apps, routes } from "../../db/schema.ts";
import { testApp } from "./app.ts";
import { openTestDatabase } from "./db.ts";
import { startFakeIronFunctions } from "./ironfunctions/server.ts";
import { KeystoneAdmin } from "./keystone.ts";

export type CallOptions = {
  token?: string;
  /** Sent as JSON unless `rawBody` is given. */
  body?: unknown;
  rawBody?: string;
  contentType?: string | null;
  headers?: Record<string, string>;
};

// biome-ignore lint/suspicious/noExplicitAny: tests assert response bodies field by field
export type CallResult = { status: number; body: any; headers: Headers };

export type Harness = Awaited<ReturnType<typeof startHarness>>;

export async function startHarness(
  options: { jwtAuthKey?: string; dbUri?: string; services?: Partial<AppServices> } = {},
) {
  const database = options.dbUri ? createDatabase(options.dbUri, { connectionLimit: 5 }) : openTestDatabase();
  const fake = await startFakeIronFunctions({ jwtAuthKey: options.jwtAuthKey });
  const engine: IronFunctionsEngine = createIronFunctionsEngine({
    url: fake.apiUrl,
    jwtKey: options.jwtAuthKey,
    connectTimeoutMs: 1_000,
    requestTimeoutMs: 1_000,
  });
  const keystone = await KeystoneAdmin.connect();
  // The production authenticator, validating each token with itself (no service credentials).
  const authenticator = new KeystoneAuthenticator({
    endpoint: keystone.url,
    logger: silentLogger,
    timeoutMs: 15_000,
  });
  const { app, services } = testApp(database, {
    authenticator,
    engine,
    ...options.services,
  });

  async function call(method: string, path: string, opts: CallOptions = {}): Promise<CallResult> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers["X-Auth-Token"] = opts.token;
    let body: string | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && opts.contentType !== null) {
      headers["Content-Type"] = opts.contentType ?? "application/json";
    }
    const response = await app.fetch(new Request(`http://picasso.test${path}`, { method, headers, body }));
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Left as text: tests assert JSON where it must be JSON.
    }
    return { status: response.status, body: parsed, headers: response.headers };
  }

  return {
    database,
    fake,
    engine,
    keystone,
    app,
    services,
    call,
    async close() {
      await authenticator.close();
      await engine.close();
      await fake.stop();
      await database.close();
    },
  };
}

/** A fresh app name per test: files share one database. */
export const freshAppName = (prefix = "t") => `${prefix}${randomBytes(6).toString("hex")}`;

export type Cast = { projectId: string; member: string; reader: string };

/** A fresh Keystone project with a member and a reader token. */
export async function castFor(harness: Harness): Promise<Cast> {
  const cast = await harness.keystone.createProjectWithUsers();
  return { projectId: cast.project.id, member: cast.member.token, reader: cast.reader.token };
}

/** Creates an app through the API and returns the name every later call uses. */
export async function createAppFor(harness: Harness, cast: Cast, name = freshAppName()): Promise<string> {
  const response = await harness.call("POST", `/v1/${cast.projectId}/apps`, {
    token: cast.member,
    body: { app: { name, config: {} } },
  });
  if (response.status !== 200)
    throw new Error(`create app: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.app.name as string;
}

export async function createRouteFor(
  harness: Harness,
  cast: Cast,
  app: string,
  route: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const response = await harness.call("POST", `/v1/${cast.projectId}/apps/${app}/routes`, {
    token: cast.member,
    body: { route: { image: "hello", ...route } },
  });
  if (response.status !== 200)
    throw new Error(`create route: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.route as Record<string, unknown>;
}

/** MySQL's rows for a public app name (undefined when none). */
export async function appRow(harness: Harness, publicName: string) {
  const [row] = await harness.database.db.select().from(apps).where(eq(apps.name, publicName));
  return row;
}

export async function routeRows(harness: Harness, publicName: string) {
  return harness.database.db
    .select({ route: routes })
    .from(routes)
    .innerJoin(apps, eq(apps.id, routes.appId))
    .where(eq(apps.name, publicName))
    .then((rows) => rows.map((row) => row.route));
}
