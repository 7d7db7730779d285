// IronFunctions goes away under load and comes back: every answer while it is away is a JSON 502
// or 503 (never a 500), no failed write reaches MySQL, and the same Picasso process recovers.
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, freePort, runCli, waitForHttp } from "../support/cli.ts";
import { testDbUri } from "../support/db.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "../support/ironfunctions/server.ts";

const CLIENTS = 10;
const PHASE_MS = { up: 1000, down: 2000, recovered: 1500 } as const;
type Phase = keyof typeof PHASE_MS | "stopping";
type Op = "createApp" | "createRoute" | "patchApp" | "patchRoute" | "deleteRoute" | "deleteApp" | "invoke";
type Answer = { op: Op; status: number; body: unknown; started: Phase; ended: Phase; appName?: string };

const run = randomBytes(4).toString("hex");
const project = `outage${run}`;
const publicName = (name: string) => `${name}-${project}`;
const app = publicName(`main-${run}`);

let fake: FakeIronFunctions;
let server: CliProcess;
let base: string;
let phase: Phase = "up";

beforeAll(async () => {
  fake = await startFakeIronFunctions();
  const port = await freePort();
  server = runCli(
    ["serve", "--auth-strategy", "noauth", "--host", "127.0.0.1", "--port", String(port)].concat([
      "--functions-url",
      fake.apiUrl,
    ]),
    { PICASSO_DB: testDbUri() },
  );
  base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/healthcheck`);
}, 30_000);

afterAll(async () => {
  server?.child.kill("SIGTERM");
  await server?.exited;
  await fake?.stop();
});

async function call(op: Op, method: string, path: string, body?: unknown, appName?: string): Promise<Answer> {
  const started = phase;
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
    // A function's plain-text answer.
  }
  return { op, status: response.status, body: parsed, started, ended: phase, appName };
}

async function snapshot() {
  const connection = await mysql.createConnection({ uri: testDbUri() });
  try {
    const [apps] = await connection.query("SELECT * FROM apps WHERE project_id = ? ORDER BY id", [project]);
    const [routes] = await connection.query("SELECT * FROM routes WHERE project_id = ? ORDER BY id", [
      project,
    ]);
    return { apps: apps as Record<string, unknown>[], routes: routes as Record<string, unknown>[] };
  } finally {
    await connection.end();
  }
}

let counter = 0;
const fresh = () => `${(counter++).toString(36)}`;

/** One step of one client; while the engine is away it also deletes rows that exist. */
async function step(client: number, iteration: number): Promise<Answer[]> {
  const ops: Op[] = [
    "createApp",
    "createRoute",
    "patchApp",
    "patchRoute",
    "deleteRoute",
    "deleteApp",
    "invoke",
  ];
  const op = ops[(client + iteration) % ops.length] as Op;
  switch (op) {
    case "createApp": {
      const name = `n-${run}-${fresh()}`;
      return [await call(op, "POST", `/v1/${project}/apps`, { app: { name } }, publicName(name))];
    }
    case "createRoute":
      return [
        await call(op, "POST", `/v1/${project}/apps/${app}/routes`, {
          route: { path: `/r${fresh()}`, image: "hello" },
        }),
      ];
    case "patchApp":
      return [await call(op, "PATCH", `/v1/${project}/apps/${app}`, { config: { STEP: fresh() } })];
    case "patchRoute":
      return [
        await call(op, "PATCH", `/v1/${project}/apps/${app}/routes/hello`, { config: { STEP: fresh() } }),
      ];
    case "deleteRoute": {
      if (phase === "down") return [await call(op, "DELETE", `/v1/${project}/apps/${app}/routes/victim`)];
      const path = `/d${fresh()}`;
      const created = await call("createRoute", "POST", `/v1/${project}/apps/${app}/routes`, {
        route: { path, image: "hello" },
      });
      // The delete only means something if the create went through (it may meet the outage).
      if (created.status !== 200) return [created];
      return [created, await call(op, "DELETE", `/v1/${project}/apps/${app}/routes${path}`)];
    }
    case "deleteApp": {
      if (phase === "down")
        return [await call(op, "DELETE", `/v1/${project}/apps/${publicName(`victim-${run}`)}`)];
      const name = `x-${run}-${fresh()}`;
      const created = await call(
        "createApp",
        "POST",
        `/v1/${project}/apps`,
        { app: { name } },
        publicName(name),
      );
      if (created.status !== 200) return [created];
      return [created, await call(op, "DELETE", `/v1/${project}/apps/${publicName(name)}`)];
    }
    case "invoke":
      return [await call(op, "POST", `/r/${app}/hello`, { name: "outage" })];
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("IronFunctions outage under load", () => {
  it("answers 502/503 JSON while the engine is away, changes nothing, and recovers without a restart", async () => {
    const setup = [
      await call("createApp", "POST", `/v1/${project}/apps`, { app: { name: `main-${run}` } }),
      await call("createApp", "POST", `/v1/${project}/apps`, { app: { name: `victim-${run}` } }),
      await call("createRoute", "POST", `/v1/${project}/apps/${app}/routes`, {
        route: { path: "/hello", image: "hello", is_public: true },
      }),
      await call("createRoute", "POST", `/v1/${project}/apps/${app}/routes`, {
        route: { path: "/victim", image: "hello" },
      }),
    ];
    for (const answer of setup) expect(answer.status, JSON.stringify(answer.body)).toBe(200);

    const answers: Answer[] = [];
    const startedBeforeStop = new Set<Promise<Answer[]>>();
    let running = true;
    const clients = Array.from({ length: CLIENTS }, async (_, client) => {
      for (let iteration = 0; running; iteration++) {
        const pending = step(client, iteration);
        if (phase === "up") startedBeforeStop.add(pending);
        answers.push(...(await pending));
      }
    });

    await sleep(PHASE_MS.up);
    phase = "stopping";
    await fake.stop();
    phase = "down";
    // Writes that reached the engine before it stopped may still commit; wait for them, then
    // nothing started from here on may change a row.
    await Promise.all(startedBeforeStop);
    const before = await snapshot();
    await sleep(PHASE_MS.down);
    const after = await snapshot();
    phase = "stopping";
    await fake.restart();
    phase = "recovered";
    await sleep(PHASE_MS.recovered);
    running = false;
    await Promise.all(clients);

    const statuses = (list: Answer[]) => {
      const counts: Record<string, number> = {};
      for (const answer of list)
        counts[`${answer.op} ${answer.status}`] = (counts[`${answer.op} ${answer.status}`] ?? 0) + 1;
      return counts;
    };
    const inPhase = (name: Phase) => answers.filter((a) => a.started === name && a.ended === name);
    const down = inPhase("down");
    const up = inPhase("up");
    const recovered = inPhase("recovered");
    const straddling = answers.filter((a) => a.started !== a.ended || a.started === "stopping");
    console.info(
      `engine-outage: ${answers.length} requests (${up.length} up, ${down.length} down, ${recovered.length} recovered, ${straddling.length} across a stop/restart); 1 outage injected`,
      JSON.stringify({
        up: statuses(up),
        down: statuses(down),
        recovered: statuses(recovered),
        straddling: statuses(straddling),
      }),
    );

    for (const answer of answers) {
      expect(answer.status, JSON.stringify(answer)).not.toBe(500);
      if (answer.status !== 200) {
        expect(answer.body, JSON.stringify(answer)).toEqual({
          error: { message: expect.any(String), code: expect.any(String) },
        });
      }
    }
    for (const answer of [...up, ...recovered]) expect(answer.status, JSON.stringify(answer)).toBe(200);
    expect(down.length).toBeGreaterThan(CLIENTS);
    for (const op of [
      "createApp",
      "createRoute",
      "patchApp",
      "patchRoute",
      "deleteRoute",
      "deleteApp",
      "invoke",
    ]) {
      expect(
        down.some((answer) => answer.op === op),
        op,
      ).toBe(true);
    }
    for (const answer of down) expect([502, 503], JSON.stringify(answer)).toContain(answer.status);
    expect(after).toEqual(before);
    // Both sides of the outage did real work.
    expect(up.filter((a) => a.op === "invoke").length).toBeGreaterThan(0);
    expect(recovered.filter((a) => a.op === "invoke").length).toBeGreaterThan(0);
    expect(recovered.filter((a) => a.op === "createApp").length).toBeGreaterThan(0);

    // Every app created 200 is in MySQL and on the engine; every refused create left no row.
    const finalState = await snapshot();
    const stored = new Map(finalState.apps.map((row) => [String(row.name), String(row.engine_name)]));
    const engineApps = new Set(fake.apps().map((engineApp) => engineApp.name));
    const creates = answers.filter((a) => a.op === "createApp" && a.appName?.startsWith("n-"));
    expect(creates.length).toBeGreaterThan(0);
    for (const answer of creates) {
      const engineName = stored.get(answer.appName ?? "");
      if (answer.status === 200) {
        expect(engineName, answer.appName).toBeDefined();
        expect(engineApps.has(engineName ?? ""), answer.appName).toBe(true);
      } else {
        expect(engineName, answer.appName).toBeUndefined();
      }
    }
  }, 60_000);
});
