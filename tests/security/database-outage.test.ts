// MariaDB goes away under load, twice: first every connection of Picasso's pool is killed
// (`KILL`, from an admin connection), then the network to it is cut (a TCP proxy between Picasso
// and MariaDB closes, refusing new connections and cutting open ones) and restored. Every answer
// meanwhile is a JSON 503 or a success served from caches, never a 500 and never a hang; the
// same Picasso process recovers by itself, and MySQL and the engine agree afterwards.
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMigrations } from "../../db/migrate.ts";
import { type CliProcess, freePort, runCli, waitForHttp } from "../support/cli.ts";
import { scratchDatabase, testDbUri } from "../support/db.ts";
import {
  type Answer,
  caller,
  isJsonError,
  Phases,
  runClients,
  sleep,
  tally,
  until,
  withoutLimits,
} from "../support/fault-load.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "../support/ironfunctions/server.ts";
import { KeystoneAdmin, type ProjectWithUsers } from "../support/keystone.ts";
import { removeQuietly } from "../support/keystone-calls.ts";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";

const CLIENTS = 8;
/** Longest any request may take, outage or not: well above the pool's 5 s connect timeout. */
const ANSWER_BOUND_MS = 12_000;
const KILL_ROUNDS = 3;
type Phase = "up" | "killing" | "settled" | "cutting" | "down" | "recovering" | "recovered";
type Op =
  | "listApps"
  | "showRoute"
  | "createApp"
  | "patchApp"
  | "createRoute"
  | "invokePrivate"
  | "invokePublic"
  | "invokeUncached";

const run = randomBytes(4).toString("hex");
let scratch: Awaited<ReturnType<typeof scratchDatabase>>;
let databaseName: string;
let proxy: TcpProxy;
let mariadbAddress: { host: string; port: number };
/** The network to MariaDB is back: a proxy on the port Picasso knows. */
const reopen = async () => {
  proxy = await startTcpProxy(mariadbAddress, "pipe", proxy.port);
};
let fake: FakeIronFunctions;
let server: CliProcess;
let base: string;
let admin: KeystoneAdmin;
let cast: ProjectWithUsers;
let project: string;
/** Changed under load: creates of routes, config patches. */
let app: string;
/** Only read and invoked under load, so its routes stay in the route cache (writes to an app drop its entries). */
let cachedApp: string;
const phases = new Phases<Phase>("up");
let call: ReturnType<typeof caller<Op | "probe", Phase>>;

/** A connection of our own, outside Picasso's pool and outside the proxy. */
async function adminConnection() {
  const url = new URL(testDbUri());
  url.pathname = "/";
  return mysql.createConnection({ uri: url.toString() });
}

beforeAll(async () => {
  scratch = await scratchDatabase();
  await runMigrations(scratch.uri);
  databaseName = new URL(scratch.uri).pathname.slice(1);
  const mariadb = new URL(scratch.uri);
  mariadbAddress = { host: mariadb.hostname, port: Number(mariadb.port || 3306) };
  proxy = await startTcpProxy(mariadbAddress);
  const throughProxy = new URL(scratch.uri);
  throughProxy.port = String(proxy.port);
  fake = await startFakeIronFunctions();
  admin = await KeystoneAdmin.connect();
  cast = await admin.createProjectWithUsers();
  project = cast.project.id;
  const port = await freePort();
  server = runCli(
    [
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--keystone-endpoint",
      admin.url,
      "--keystone-timeout",
      "15",
      "--functions-url",
      fake.apiUrl,
      // Long enough that every lookup made before the outage is still cached during it.
      "--route-cache-ttl",
      "60",
      "--healthcheck-cache",
      "0",
      "--healthcheck-timeout",
      "2",
    ],
    { PICASSO_DB: throughProxy.toString(), ...withoutLimits },
  );
  base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/healthcheck`, 30_000);
  call = caller(base, phases, ANSWER_BOUND_MS);
}, 60_000);

afterAll(async () => {
  server?.child.kill("SIGTERM");
  await server?.exited;
  await proxy?.stop();
  await fake?.stop();
  await scratch?.drop();
  if (admin && cast) {
    await removeQuietly(admin, { users: [cast.member.id, cast.reader.id], projects: [cast.project.id] });
  }
});

/** Kills every connection Picasso's pool holds to this test's database; returns how many. */
async function killPool(connection: mysql.Connection): Promise<number> {
  const [rows] = await connection.query(
    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
    [databaseName],
  );
  let killed = 0;
  for (const { ID } of rows as { ID: number }[]) {
    // The connection may have gone by itself between the listing and the kill.
    await connection.query(`KILL ${Number(ID)}`).then(
      () => killed++,
      () => {},
    );
  }
  return killed;
}

async function detailedHealth() {
  const response = await fetch(`${base}/healthcheck?detailed=1`, { signal: AbortSignal.timeout(10_000) });
  const report = (await response.json()) as { status: string; checks: { database: { status: string } } };
  return { status: response.status, report };
}

let counter = 0;
const fresh = () => `${run}${(counter++).toString(36)}`;

function step(client: number, iteration: number): Promise<Answer<Op | "probe", Phase>> {
  const ops: Op[] = [
    "listApps",
    "showRoute",
    "createApp",
    "patchApp",
    "createRoute",
    "invokePrivate",
    "invokePublic",
    "invokeUncached",
  ];
  const op = ops[(client + iteration) % ops.length] as Op;
  const token = cast.member.token;
  switch (op) {
    case "listApps":
      return call(op, "GET", `/v1/${project}/apps`, { token });
    case "showRoute":
      return call(op, "GET", `/v1/${project}/apps/${cachedApp}/routes/hello`, { token });
    case "createApp": {
      const name = `n-${fresh()}`;
      return call(op, "POST", `/v1/${project}/apps`, { token, body: { app: { name } } }).then((answer) => ({
        ...answer,
        subject: `${name}-${project}`,
      }));
    }
    case "patchApp":
      return call(op, "PATCH", `/v1/${project}/apps/${app}`, { token, body: { config: { STEP: fresh() } } });
    case "createRoute":
      return call(op, "POST", `/v1/${project}/apps/${app}/routes`, {
        token,
        body: { route: { path: `/r${fresh()}`, image: "hello" } },
      });
    case "invokePrivate":
      return call(op, "POST", `/v1/r/${project}/${cachedApp}/hello`, { token, body: { name: "db" } });
    case "invokePublic":
      return call(op, "POST", `/r/${cachedApp}/public`, { body: { name: "db" } });
    case "invokeUncached":
      // A path never looked up before: the lookup must reach MySQL.
      return call(op, "POST", `/v1/r/${project}/${cachedApp}/missing-${fresh()}`, { token });
  }
}

describe("MariaDB outage under load", () => {
  it("answers JSON 503 or cached successes, never 500 or a hang, and recovers without a restart", async () => {
    const token = cast.member.token;
    const names: string[] = [];
    for (const name of [`main-${run}`, `cached-${run}`]) {
      const created = await call("createApp", "POST", `/v1/${project}/apps`, {
        token,
        body: { app: { name } },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(200);
      names.push((created.body as { app: { name: string } }).app.name);
    }
    [app, cachedApp] = names as [string, string];
    for (const route of [
      { path: "/hello", image: "hello" },
      { path: "/public", image: "hello", is_public: true },
    ]) {
      const answer = await call("createRoute", "POST", `/v1/${project}/apps/${cachedApp}/routes`, {
        token,
        body: { route },
      });
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    }
    // Both routes in the route cache, the token in the token cache.
    const warmed = await call("invokePrivate", "POST", `/v1/r/${project}/${cachedApp}/hello`, { token });
    expect(warmed.status).toBe(200);
    expect((await call("invokePublic", "POST", `/r/${cachedApp}/public`)).status).toBe(200);
    expect((await detailedHealth()).report.checks.database.status).toBe("ok");

    const killer = await adminConnection();
    const load = runClients(CLIENTS, async (client, iteration) => [await step(client, iteration)]);
    let faults = 0;
    let killed = 0;
    const healthDuringOutage: Awaited<ReturnType<typeof detailedHealth>>[] = [];
    let recoveredWrite: Answer | undefined;
    try {
      await sleep(1000);

      phases.set("killing");
      for (let round = 0; round < KILL_ROUNDS; round++) {
        killed += await killPool(killer);
        faults++;
        await sleep(300);
      }
      // Killed connections leave the pool as their sockets close; give that a moment.
      await sleep(300);
      phases.set("settled");
      await sleep(1000);

      phases.set("cutting");
      await proxy.stop();
      faults++;
      phases.set("down");
      await sleep(500);
      healthDuringOutage.push(await detailedHealth());
      await sleep(1500);
      healthDuringOutage.push(await detailedHealth());

      phases.set("recovering");
      await reopen();
      // The pool comes back by itself: the first write through it succeeds within a bound.
      await until(
        "a write after the outage",
        async () => {
          recoveredWrite = await call("probe", "POST", `/v1/${project}/apps`, {
            token,
            body: { app: { name: `after-${fresh()}` } },
          });
          return recoveredWrite.status === 200;
        },
        15_000,
      );
      phases.set("recovered");
      await sleep(1500);
    } finally {
      await load.stop();
      await killer.end();
      if (phases.current === "down" || phases.current === "cutting") await reopen();
    }
    const answers = load.results;

    const inPhase = (...names: Phase[]) =>
      answers.filter((a) => names.includes(a.started) && names.includes(a.ended));
    const up = inPhase("up", "settled");
    const killing = answers.filter((a) => a.started === "killing" || a.ended === "killing");
    const down = inPhase("down");
    const recovered = inPhase("recovered");
    const unexpected: Answer[] = [];
    for (const answer of answers) {
      const ok = answer.status === 200 || (answer.op === "invokeUncached" && answer.status === 404);
      const unavailable =
        answer.status === 503 &&
        isJsonError(answer.body) &&
        (answer.body as { error: { code: string } }).error.code === "database_unavailable";
      if (!ok && !unavailable) unexpected.push(answer);
    }
    const cutCommits = (server.output().match(/a commit was cut off/g) ?? []).length;
    console.info(
      `database-outage: ${answers.length + 1} requests under load (${up.length} up, ${killing.length} while killing, ${down.length} down, ${recovered.length} recovered); ${faults} faults injected (${KILL_ROUNDS} KILL rounds, ${killed} connections killed, 1 network cut); ${cutCommits} commits cut off mid-COMMIT; ${unexpected.length} unexpected answers`,
      JSON.stringify({
        up: tally(up),
        killing: tally(killing),
        down: tally(down),
        recovered: tally(recovered),
      }),
    );
    expect(
      unexpected.slice(0, 5).map(({ op, status, body, error }) => ({ op, status, body, error })),
      `${unexpected.length} unexpected answers, the first 5 shown`,
    ).toEqual([]);
    expect(killed).toBeGreaterThan(0);

    // Outside the faults everything works.
    for (const answer of [...up, ...recovered]) {
      const expected = answer.op === "invokeUncached" ? 404 : 200;
      expect(answer.status, JSON.stringify(answer)).toBe(expected);
    }
    // During the cut, MySQL is needed by every management call and every uncached lookup (503),
    // while cached routes with cached tokens keep being invoked.
    expect(down.length).toBeGreaterThan(CLIENTS);
    for (const answer of down) {
      const cached = answer.op === "invokePrivate" || answer.op === "invokePublic";
      expect(answer.status, JSON.stringify(answer)).toBe(cached ? 200 : 503);
    }
    for (const op of ["listApps", "createApp", "invokeUncached", "invokePrivate", "invokePublic"]) {
      expect(
        down.some((answer) => answer.op === op),
        op,
      ).toBe(true);
    }
    expect(recovered.some((answer) => answer.op === "createApp")).toBe(true);

    // The detailed healthcheck said so, and says it is back.
    for (const health of healthDuringOutage) {
      expect(health.status).toBe(503);
      expect(health.report.status).toBe("unavailable");
      expect(health.report.checks.database.status).toBe("error");
    }
    const after = await detailedHealth();
    expect(after.status).toBe(200);
    expect(after.report.checks.database.status).toBe("ok");

    // The write after the outage is read back through the same pool.
    const written = (recoveredWrite?.body as { app: { name: string } } | undefined)?.app.name;
    const read = await call("probe", "GET", `/v1/${project}/apps/${written}`, { token });
    expect(read.status).toBe(200);

    // Every create answered 200 is stored; none started and ended in the outage left a row; and
    // MySQL and the engine agree: no write was left half-done by a killed or cut connection.
    const connection = await adminConnection();
    try {
      const [rows] = await connection.query(
        `SELECT name FROM ${mysql.escapeId(databaseName)}.apps WHERE project_id = ?`,
        [project],
      );
      const stored = new Set((rows as { name: string }[]).map((row) => row.name));
      const creates = answers.filter((a) => a.op === "createApp");
      for (const answer of creates.filter((a) => a.status === 200)) {
        expect(stored.has(answer.subject ?? ""), answer.subject).toBe(true);
      }
      for (const answer of creates.filter((a) => a.started === "down" && a.ended === "down")) {
        expect(stored.has(answer.subject ?? ""), answer.subject).toBe(false);
      }
    } finally {
      await connection.end();
    }
    const reconcile = runCli(["reconcile", "--db-uri", scratch.uri, "--functions-url", fake.apiUrl]);
    const outcome = await reconcile.exited;
    expect(outcome.code, reconcile.output()).toBe(0);
  }, 60_000);
});
