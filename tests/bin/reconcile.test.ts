import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadReconcileConfig } from "../../app/config.ts";
import { silentLogger } from "../../app/lib/logger.ts";
import { type Drift, describeDrift, findDrift, fixDrift } from "../../app/services/reconcile/index.ts";
import { reconcileWith } from "../../bin/commands/reconcile.ts";
import { runMigrations } from "../../db/migrate.ts";
import { runCli } from "../support/cli.ts";
import { scratchDatabase } from "../support/db.ts";
import {
  appRow,
  type Cast,
  castFor,
  createAppFor,
  createRouteFor,
  type Harness,
  startHarness,
} from "../support/management.ts";

// Reconcile looks at every app, so it runs on a database of its own, not the shared test one.
let scratch: Awaited<ReturnType<typeof scratchDatabase>>;
let h: Harness;
let cast: Cast;

beforeAll(async () => {
  scratch = await scratchDatabase();
  await runMigrations(scratch.uri);
  h = await startHarness({ dbUri: scratch.uri });
  cast = await castFor(h);
});
afterAll(async () => {
  await h?.close();
  await scratch?.drop();
});

const config = () =>
  loadReconcileConfig(
    { "db-uri": scratch.uri, "functions-url": h.fake.apiUrl, "functions-timeout": "2" },
    {},
  );

async function reconcile(fix: boolean) {
  const lines: string[] = [];
  const code = await reconcileWith(config(), { fix, write: (line) => lines.push(line) });
  return { code, lines };
}

async function engineCall(method: string, path: string, body?: unknown) {
  const response = await fetch(`${h.fake.apiUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(response.status, `${method} ${path}`).toBe(200);
}

const sources = () => ({ db: h.database.db, engine: h.engine, logger: silentLogger });

describe("picasso-api reconcile", () => {
  it("reports in sync (exit 0) when MySQL and the engine agree", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/ok", headers: { "X-A": ["1"] }, config: { A: "1" } });
    const { code, lines } = await reconcile(false);
    expect(lines).toEqual(["in sync"]);
    expect(code).toBe(0);
  });

  it("finds every kind of drift, fixes it with MySQL winning, and leaves foreign apps alone", async () => {
    const routeDrift = await createAppFor(h, cast);
    await createRouteFor(h, cast, routeDrift, { path: "/gone" });
    await createRouteFor(h, cast, routeDrift, { path: "/changed", memory: 256, headers: { "X-A": ["1"] } });
    const configDrift = await createAppFor(h, cast);
    await h.call("PUT", `/v1/${cast.projectId}/apps/${configDrift}`, {
      token: cast.member,
      body: { config: { WANTED: "yes" } },
    });
    const lostApp = await createAppFor(h, cast);
    await createRouteFor(h, cast, lostApp, { path: "/lost/route" });

    const routeEngine = (await appRow(h, routeDrift))?.engineName ?? "";
    const configEngine = (await appRow(h, configDrift))?.engineName ?? "";
    const lostEngine = (await appRow(h, lostApp))?.engineName ?? "";
    const orphan = `pc-${randomBytes(14).toString("hex").slice(0, 27)}`;
    const foreign = `someone-else-${randomBytes(3).toString("hex")}`;

    await engineCall("DELETE", `/apps/${routeEngine}/routes/gone`);
    await engineCall("POST", `/apps/${routeEngine}/routes`, { route: { path: "/extra", image: "hello" } });
    await engineCall("PATCH", `/apps/${routeEngine}/routes/changed`, {
      route: { memory: 64, headers: { "X-A": ["2"] } },
    });
    await engineCall("PATCH", `/apps/${configEngine}`, { app: { config: { WANTED: "", ROGUE: "1" } } });
    await engineCall("DELETE", `/apps/${lostEngine}/routes/lost/route`);
    await engineCall("DELETE", `/apps/${lostEngine}`);
    await engineCall("POST", `/apps/${orphan}/routes`, { route: { path: "/orphan", image: "hello" } });
    await engineCall("POST", "/apps", { app: { name: foreign } });

    const report = await reconcile(false);
    expect(report.code).toBe(1);
    expect(report.lines.slice(0, -1).sort()).toEqual(
      [
        `missing route ${routeDrift}/gone (engine ${routeEngine}): in MySQL, not on the engine`,
        `extra route ${routeDrift}/extra (engine ${routeEngine}): on the engine, not in MySQL`,
        `differing route ${routeDrift}/changed (engine ${routeEngine}): memory, headers`,
        `differing app ${configDrift} (engine ${configEngine}): config`,
        `missing app ${lostApp} (engine ${lostEngine}): in MySQL, not on the engine`,
        `missing route ${lostApp}/lost/route (engine ${lostEngine}): in MySQL, not on the engine`,
        `extra app ${orphan}: on the engine, not in MySQL`,
        `extra app ${foreign}: on the engine, not in MySQL (not a Picasso name: never deleted)`,
      ].sort(),
    );
    expect(report.lines.at(-1)).toBe("8 difference(s); run with --fix to repair");

    const fixed = await reconcile(true);
    // The foreign app stays, so drift remains and the exit code says so.
    expect(fixed.code).toBe(1);
    expect(fixed.lines).toContain(
      `extra app ${foreign}: on the engine, not in MySQL (not a Picasso name: never deleted) -> left-alone`,
    );
    expect(fixed.lines.filter((line) => line.endsWith("-> fixed"))).toHaveLength(7);
    expect(fixed.lines.at(-1)).toBe("1 difference(s) remain");

    // The engine now says what MySQL says.
    const routes = h.fake.routes(routeEngine);
    expect(routes.map((route) => route.path).sort()).toEqual(["/changed", "/gone"]);
    expect(routes.find((route) => route.path === "/changed")).toMatchObject({
      memory: 256,
      headers: { "X-A": ["1"] },
    });
    expect(h.fake.apps().find((app) => app.name === configEngine)?.config).toEqual({ WANTED: "yes" });
    expect(h.fake.routes(lostEngine).map((route) => route.path)).toEqual(["/lost/route"]);
    expect(h.fake.apps().some((app) => app.name === orphan)).toBe(false);
    expect(h.fake.apps().some((app) => app.name === foreign)).toBe(true);

    await engineCall("DELETE", `/apps/${foreign}`);
    expect(await reconcile(true)).toEqual({ code: 0, lines: ["in sync (0 difference(s) repaired)"] });
  });

  it("does not undo an app whose create is still in flight", async () => {
    // A create holds its row uncommitted while it creates the engine app: reconcile must wait for
    // it instead of deleting the engine app as an orphan.
    const id = randomBytes(16).toString("hex");
    const engineName = `pc-${id.slice(0, 27)}`;
    const connection = await mysql.createConnection({ uri: scratch.uri });
    try {
      await connection.query("BEGIN");
      await connection.query(
        "INSERT INTO apps (id, project_id, name, engine_name, description, config) VALUES (?, ?, ?, ?, '', '{}')",
        [id, cast.projectId, `inflight-${cast.projectId}`, engineName],
      );
      await engineCall("POST", "/apps", { app: { name: engineName } });
      const drift = await findDrift(sources());
      const orphan = drift.find(
        (item): item is Extract<Drift, { kind: "extra-app" }> => item.engineApp === engineName,
      );
      expect(orphan && describeDrift(orphan)).toBe(`extra app ${engineName}: on the engine, not in MySQL`);
      const fixing = fixDrift(sources(), [orphan as Drift]);
      await connection.query("COMMIT");
      expect((await fixing).map((outcome) => outcome.result)).toEqual(["changed-meanwhile"]);
      expect(h.fake.apps().some((app) => app.name === engineName)).toBe(true);
    } finally {
      await connection.end();
    }
    await h.call("DELETE", `/v1/${cast.projectId}/apps/inflight-${cast.projectId}`, { token: cast.member });
  });

  it("exits 2 when the engine cannot be reached", async () => {
    const stopped = loadReconcileConfig(
      { "db-uri": scratch.uri, "functions-url": "http://127.0.0.1:9/v1", "functions-connect-timeout": "1" },
      {},
    );
    const lines: string[] = [];
    expect(await reconcileWith(stopped, { fix: false, write: (line) => lines.push(line) })).toBe(2);
    expect(lines.join("\n")).toMatch(/^error: function engine unreachable/);
  });

  it("runs as a command: exit 1 with drift on stdout, 0 once fixed, 2 on a bad option", async () => {
    const app = await createAppFor(h, cast);
    await engineCall("DELETE", `/apps/${(await appRow(h, app))?.engineName}`);
    const env = { PICASSO_DB: scratch.uri, FUNCTIONS_URL: h.fake.apiUrl };

    const report = runCli(["reconcile"], env);
    expect((await report.exited).code).toBe(1);
    expect(report.output()).toContain(`missing app ${app}`);

    const fix = runCli(["reconcile", "--fix"], env);
    expect((await fix.exited).code).toBe(0);
    expect(fix.output()).toContain("in sync (1 difference(s) repaired)");

    const bad = runCli(["reconcile", "--functions-url", "ftp://x"], env);
    expect((await bad.exited).code).toBe(2);
    expect(bad.output()).toContain("--functions-url");
  });
});
