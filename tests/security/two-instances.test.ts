// Two `picasso-api serve` processes on one database and one engine: concurrent creates of the same
// names end in one 200 and 409s, the database and the engine agree afterwards, and a change made
// through one instance reaches the other's route cache within --route-cache-ttl.
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, runCli, startNoAuthServe } from "../support/cli.ts";
import { scratchDatabase } from "../support/db.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "../support/ironfunctions/server.ts";

const ROUTE_CACHE_TTL_SECONDS = 1;
const NAMES = 10;
const REPEATS = 3;
const PATHS = ["/one", "/two/deep"];
const project = "twoinstances";

type Answer = { status: number; body: unknown };

/** Picasso stores and serves an app under its name with the project appended. */
const publicName = (name: string) => `${name}-${project}`;

let scratch: Awaited<ReturnType<typeof scratchDatabase>>;
let fake: FakeIronFunctions;
const servers: CliProcess[] = [];
const bases: string[] = [];
let sent = 0;

async function call(base: string, method: string, path: string, body?: unknown): Promise<Answer> {
  sent += 1;
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Invocations answer the function's plain text.
  }
  return { status: response.status, body: parsed };
}

/** Every refusal is the documented JSON error, never a 500. */
function expectCleanError(answer: Answer, status: number) {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.body).toEqual({ error: { message: expect.any(String), code: expect.any(String) } });
}

async function startServe(): Promise<string> {
  const { server, base } = await startNoAuthServe({
    functionsUrl: fake.apiUrl,
    args: ["--route-cache-ttl", String(ROUTE_CACHE_TTL_SECONDS)],
    env: { PICASSO_DB: scratch.uri },
  });
  servers.push(server);
  return base;
}

beforeAll(async () => {
  scratch = await scratchDatabase();
  const migrate = runCli(["migrate", "--db-uri", scratch.uri]);
  expect((await migrate.exited).code, migrate.output()).toBe(0);
  fake = await startFakeIronFunctions();
  bases.push(...(await Promise.all([startServe(), startServe()])));
}, 60_000);

afterAll(async () => {
  for (const server of servers) {
    server.child.kill("SIGTERM");
    await server.exited;
  }
  await fake?.stop();
  await scratch?.drop();
});

async function query<T>(sql: string, values: unknown[] = []): Promise<T[]> {
  const connection = await mysql.createConnection({ uri: scratch.uri });
  try {
    const [rows] = await connection.query(sql, values);
    return rows as T[];
  } finally {
    await connection.end();
  }
}

/** Fires every request at once: each target once through each instance, REPEATS times over. */
function race(targets: string[], send: (base: string, target: string) => Promise<Answer>) {
  return Promise.all(
    targets.map(async (target) => {
      const answers = await Promise.all(
        Array.from({ length: REPEATS }, () => bases.map((base) => send(base, target))).flat(),
      );
      return { target, answers };
    }),
  );
}

describe("two picasso-api serve instances on one database and one engine", () => {
  const run = randomBytes(4).toString("hex");
  const names = Array.from({ length: NAMES }, (_, i) => `two-${run}-${i}`);

  it("settles concurrent creates, updates and deletes with one winner each and leaves nothing to reconcile", async () => {
    const appCreates = await race(names, (base, name) =>
      call(base, "POST", `/v1/${project}/apps`, { app: { name } }),
    );
    for (const { answers } of appCreates) {
      expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
      for (const answer of answers.filter((a) => a.status !== 200)) expectCleanError(answer, 409);
    }

    const routeTargets = names.flatMap((name) => PATHS.map((path) => `${publicName(name)}${path}`));
    const split = (target: string) => {
      const slash = target.indexOf("/");
      return { name: target.slice(0, slash), path: target.slice(slash) };
    };
    const routeCreates = await race(routeTargets, (base, target) => {
      const { name, path } = split(target);
      return call(base, "POST", `/v1/${project}/apps/${name}/routes`, { route: { path, image: "hello" } });
    });
    for (const { answers } of routeCreates) {
      expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
      for (const answer of answers.filter((a) => a.status !== 200)) expectCleanError(answer, 409);
    }

    // Updates never conflict: each is applied under the row lock, the last one wins.
    const routeUpdates = await race(routeTargets, (base, target) => {
      const { name, path } = split(target);
      return call(base, "PATCH", `/v1/${project}/apps/${name}/routes${path}`, {
        config: { FROM: base === bases[0] ? "a" : "b" },
      });
    });
    const appUpdates = await race(names, (base, name) =>
      call(base, "PATCH", `/v1/${project}/apps/${publicName(name)}`, {
        config: { FROM: base === bases[0] ? "a" : "b" },
      }),
    );
    for (const { answers } of [...routeUpdates, ...appUpdates]) {
      for (const answer of answers) expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    }

    // Delete the second route of every app, then the first five apps' remaining route and the apps.
    const deleteOnce = async (targets: string[], path: (target: string) => string) => {
      const deletes = await race(targets, (base, target) => call(base, "DELETE", path(target)));
      for (const { answers } of deletes) {
        expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
        for (const answer of answers.filter((a) => a.status !== 200)) expectCleanError(answer, 404);
      }
    };
    const routePath = (target: string) => {
      const { name, path } = split(target);
      return `/v1/${project}/apps/${name}/routes${path}`;
    };
    await deleteOnce(
      names.map((name) => `${publicName(name)}${PATHS[1]}`),
      routePath,
    );
    const doomed = names.slice(0, 5);
    await deleteOnce(
      doomed.map((name) => `${publicName(name)}${PATHS[0]}`),
      routePath,
    );
    await deleteOnce(doomed, (name) => `/v1/${project}/apps/${publicName(name)}`);

    const survivors = names.slice(5).map(publicName);
    const appRows = await query<{ name: string; engine_name: string; config: unknown }>(
      "SELECT name, engine_name, config FROM apps ORDER BY name",
    );
    expect(appRows.map((row) => row.name)).toEqual([...survivors].sort());
    const routeRows = await query<{ name: string; path: string }>(
      "SELECT apps.name, routes.path FROM routes JOIN apps ON apps.id = routes.app_id ORDER BY apps.name",
    );
    expect(routeRows.map((row) => `${row.name}${row.path}`)).toEqual(
      [...survivors].sort().map((name) => `${name}${PATHS[0]}`),
    );
    const orphans = await query("SELECT id FROM routes WHERE app_id NOT IN (SELECT id FROM apps)");
    expect(orphans).toEqual([]);
    // The engine holds exactly the surviving apps, each with its one route and a winner's config.
    expect(fake.apps().map((app) => app.name)).toEqual(appRows.map((row) => row.engine_name).sort());
    for (const row of appRows) {
      expect(fake.routes(row.engine_name).map((route) => route.path)).toEqual([PATHS[0]]);
      expect(["a", "b"]).toContain(fake.routes(row.engine_name)[0]?.config.FROM);
    }

    const reconcile = runCli(["reconcile", "--db-uri", scratch.uri, "--functions-url", fake.apiUrl]);
    const exited = await reconcile.exited;
    expect(reconcile.output()).toContain("in sync");
    expect(exited.code, reconcile.output()).toBe(0);
  }, 120_000);

  it("serves a change made through one instance from the other within --route-cache-ttl", async () => {
    const [a, b] = bases as [string, string];
    expect((await call(a, "POST", `/v1/${project}/apps`, { app: { name: `two-${run}-ttl` } })).status).toBe(
      200,
    );
    const name = publicName(`two-${run}-ttl`);
    const created = await call(a, "POST", `/v1/${project}/apps/${name}/routes`, {
      route: { path: "/hello", image: "hello" },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    // B caches the route as private.
    expectCleanError(await call(b, "GET", `/r/${name}/hello`), 403);

    expect(
      (await call(a, "PATCH", `/v1/${project}/apps/${name}/routes/hello`, { is_public: true })).status,
    ).toBe(200);
    // A applies its own change at once.
    expect((await call(a, "GET", `/r/${name}/hello`)).status).toBe(200);

    /** Calls until `done` holds or the TTL plus 2 s pass; every answer before must be `stale`. */
    const within = async (
      base: string,
      done: (answer: Answer) => boolean,
      stale: (answer: Answer) => void,
    ) => {
      const deadline = Date.now() + (ROUTE_CACHE_TTL_SECONDS + 2) * 1000;
      let last = await call(base, "GET", `/r/${name}/hello`);
      while (!done(last) && Date.now() < deadline) {
        stale(last);
        await new Promise((resolve) => setTimeout(resolve, 50));
        last = await call(base, "GET", `/r/${name}/hello`);
      }
      expect(done(last), JSON.stringify(last)).toBe(true);
    };
    await within(
      b,
      (answer) => answer.status === 200,
      (answer) => expectCleanError(answer, 403),
    );

    // The other way round: B deletes the route that A has cached as public.
    expect((await call(a, "GET", `/r/${name}/hello`)).status).toBe(200);
    expect((await call(b, "DELETE", `/v1/${project}/apps/${name}/routes/hello`)).status).toBe(200);
    expectCleanError(await call(b, "GET", `/r/${name}/hello`), 404);
    // Until its entry expires A still sends the call to the engine, whose own 404 body (no `code`)
    // comes back; after the TTL A's lookup answers Picasso's not_found.
    await within(
      a,
      (answer) =>
        answer.status === 404 && (answer.body as { error?: { code?: string } }).error?.code === "not_found",
      (answer) => expect(answer).toEqual({ status: 404, body: { error: { message: expect.any(String) } } }),
    );
    console.info(`two-instances: ${sent} requests sent through 2 instances`);
  }, 30_000);
});
