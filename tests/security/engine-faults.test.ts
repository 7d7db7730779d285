// The function engine misbehaves under load, one fault after another, through the IronFunctions
// test server's fault switch: it answers 500, then 503, then hangs, then is slow, then refuses
// connections. Invocations and management calls answer as the README says (the engine's own
// error passed through for invocations, 502/503/504 JSON for management, 504 after the route's
// timeout for a hung function), never a hang; failed writes leave MySQL as it was, and once the
// fault is cleared everything works again and MySQL and the engine agree.
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMigrations } from "../../db/migrate.ts";
import { type CliProcess, runCli, startNoAuthServe } from "../support/cli.ts";
import { scratchDatabase } from "../support/db.ts";
import {
  type Answer,
  caller,
  isJsonError,
  Phases,
  runClients,
  sleep,
  tally,
  withoutLimits,
} from "../support/fault-load.ts";
import {
  type FakeIronFunctions,
  type Fault,
  startFakeIronFunctions,
} from "../support/ironfunctions/server.ts";

const CLIENTS = 8;
/** --functions-timeout, and the invoked route's timeout, in seconds. */
const FUNCTIONS_TIMEOUT_S = 1;
const ROUTE_TIMEOUT_S = 1;
const INVOKE_MARGIN_S = 0.5;
/** A hung engine answers within timeout + undo timeout; this leaves a loaded machine ample slack. */
const ANSWER_BOUND_MS = 15_000;

type FaultPhase = "status500" | "status503" | "hang" | "delay" | "refuse";
type Phase = "up" | "switching" | FaultPhase | "cleared";
type Op = "createApp" | "patchApp" | "createRoute" | "patchRoute" | "deleteRoute" | "listApps" | "invoke";
const writes = new Set<Op>(["createApp", "patchApp", "createRoute", "patchRoute", "deleteRoute"]);

const faults: Record<FaultPhase, { fault: Fault; ms: number }> = {
  status500: { fault: { kind: "status", status: 500, message: "engine broke", scope: "all" }, ms: 1200 },
  status503: { fault: { kind: "status", status: 503, message: "engine overloaded", scope: "all" }, ms: 1200 },
  hang: { fault: { kind: "hang", scope: "all" }, ms: 4000 },
  // Long enough that on a loaded machine each kind of write completes at least once behind the delay.
  delay: { fault: { kind: "delay", ms: 100, scope: "all" }, ms: 3000 },
  refuse: { fault: { kind: "refuse-connections" }, ms: 1200 },
};

/** What each fault phase answers, per kind of request (reads never touch the engine). */
function expectedStatuses(phase: FaultPhase, op: Op): number[] {
  if (op === "listApps") return [200];
  const isWrite = writes.has(op);
  switch (phase) {
    // Slow, not failing: all succeed, but writes of one app queue on its row locks, and one
    // that waits longer than --functions-timeout is told the app is busy (503).
    case "delay":
      return isWrite ? [200, 503] : [200];
    // The engine's own failure of a call is passed through; a management call it fails is 502.
    case "status500":
      return isWrite ? [502] : [500];
    case "status503":
      return isWrite ? [502] : [503];
    // A write times out on the engine (504), or on the row locks of one that does (503).
    case "hang":
      return isWrite ? [504, 503] : [504];
    // Unreachable: management 503, invocation 502.
    case "refuse":
      return isWrite ? [503] : [502];
  }
}

const run = randomBytes(4).toString("hex");
const project = `faults${run}`;
const app = `main-${project}`;
let scratch: Awaited<ReturnType<typeof scratchDatabase>>;
let fake: FakeIronFunctions;
let server: CliProcess;
const phases = new Phases<Phase>("up");
let call: ReturnType<typeof caller<Op, Phase>>;

beforeAll(async () => {
  scratch = await scratchDatabase();
  await runMigrations(scratch.uri);
  fake = await startFakeIronFunctions();
  const started = await startNoAuthServe({
    functionsUrl: fake.apiUrl,
    args: [
      "--functions-timeout",
      String(FUNCTIONS_TIMEOUT_S),
      "--functions-connect-timeout",
      "1",
      "--invoke-timeout-margin",
      String(INVOKE_MARGIN_S),
    ],
    env: { PICASSO_DB: scratch.uri, ...withoutLimits },
  });
  server = started.server;
  const base = started.base;
  call = caller(base, phases, ANSWER_BOUND_MS);
}, 60_000);

afterAll(async () => {
  fake?.setFault(null);
  server?.child.kill("SIGTERM");
  await server?.exited;
  await fake?.stop();
  await scratch?.drop();
});

async function snapshot() {
  const connection = await mysql.createConnection({ uri: scratch.uri });
  try {
    const [apps] = await connection.query("SELECT * FROM apps ORDER BY id");
    const [routes] = await connection.query("SELECT * FROM routes ORDER BY id");
    return { apps, routes };
  } finally {
    await connection.end();
  }
}

let counter = 0;
const fresh = () => (counter++).toString(36);

async function step(client: number, iteration: number): Promise<Answer<Op, Phase>[]> {
  const ops: Op[] = [
    "createApp",
    "patchApp",
    "createRoute",
    "patchRoute",
    "deleteRoute",
    "listApps",
    "invoke",
  ];
  const op = ops[(client + iteration) % ops.length] as Op;
  const routes = `/v1/${project}/apps/${app}/routes`;
  switch (op) {
    case "createApp":
      return [await call(op, "POST", `/v1/${project}/apps`, { body: { app: { name: `n${fresh()}` } } })];
    case "patchApp":
      return [await call(op, "PATCH", `/v1/${project}/apps/${app}`, { body: { config: { STEP: fresh() } } })];
    case "createRoute":
      return [await call(op, "POST", routes, { body: { route: { path: `/r${fresh()}`, image: "hello" } } })];
    case "patchRoute":
      return [await call(op, "PATCH", `${routes}/victim`, { body: { config: { STEP: fresh() } } })];
    case "deleteRoute": {
      // In a failing fault, deleting that fault's victim must fail and leave it (a delete still
      // waiting when the fault clears may then succeed: hence one victim per fault); otherwise a
      // fresh route goes.
      const phase = phases.current;
      if (phase in faults && phase !== "delay")
        return [await call(op, "DELETE", `${routes}/victim-${phase}`)];
      const path = `/d${fresh()}`;
      const created = await call("createRoute", "POST", routes, {
        body: { route: { path, image: "hello" } },
      });
      if (created.status !== 200) return [created];
      return [created, await call(op, "DELETE", `${routes}${path}`)];
    }
    case "listApps":
      return [await call(op, "GET", `/v1/${project}/apps?limit=10`)];
    case "invoke":
      return [await call(op, "POST", `/r/${app}/hello`, { body: { name: "faults" } })];
  }
}

describe("function engine faults under load", () => {
  it("answers every fault as documented, never hangs, changes nothing on failure, and recovers", async () => {
    const setup = [
      await call("createApp", "POST", `/v1/${project}/apps`, { body: { app: { name: "main" } } }),
      await call("createRoute", "POST", `/v1/${project}/apps/${app}/routes`, {
        body: { route: { path: "/hello", image: "hello", is_public: true, timeout: ROUTE_TIMEOUT_S } },
      }),
    ];
    for (const victim of ["victim", ...Object.keys(faults).map((phase) => `victim-${phase}`)]) {
      setup.push(
        await call("createRoute", "POST", `/v1/${project}/apps/${app}/routes`, {
          body: { route: { path: `/${victim}`, image: "hello" } },
        }),
      );
    }
    for (const answer of setup) expect(answer.status, JSON.stringify(answer.body)).toBe(200);

    // Requests in flight, with the phase they started in, so a fault's "before" snapshot can
    // wait for the writes that started before it.
    const inflight = new Map<Promise<unknown>, Phase>();
    const load = runClients(CLIENTS, async (client, iteration) => {
      const pending = step(client, iteration);
      inflight.set(pending, phases.current);
      try {
        return await pending;
      } finally {
        inflight.delete(pending);
      }
    });
    const unchanged: { phase: FaultPhase; same: boolean }[] = [];
    let injected = 0;
    try {
      await sleep(800);
      for (const [name, { fault, ms }] of Object.entries(faults) as [
        FaultPhase,
        (typeof faults)[FaultPhase],
      ][]) {
        phases.set("switching");
        fake.setFault(fault);
        injected++;
        phases.set(name);
        await Promise.all(
          [...inflight].filter(([, started]) => started !== name).map(([pending]) => pending),
        );
        const before = await snapshot();
        await sleep(ms);
        const after = await snapshot();
        if (name !== "delay")
          unchanged.push({ phase: name, same: JSON.stringify(before) === JSON.stringify(after) });
        phases.set("switching");
        fake.setFault(null);
      }
      phases.set("cleared");
      await sleep(1500);
    } finally {
      fake.setFault(null);
      await load.stop();
    }
    const answers = load.results;

    const unexpected = answers.filter((answer) => {
      if (answer.status === 200) return false;
      if (answer.status === 0) return true;
      // Management errors are Picasso's JSON; an invocation may carry the engine's own error body.
      const engineBody = (answer.body as { error?: { message?: unknown } } | null)?.error?.message;
      if (answer.op === "invoke" ? typeof engineBody !== "string" : !isJsonError(answer.body)) return true;
      // Only a fault phase explains a failure; one that straddles a switch may meet either side.
      const explained = [answer.started, answer.ended].some(
        (phase) =>
          phase in faults && expectedStatuses(phase as FaultPhase, answer.op).includes(answer.status),
      );
      const switching = answer.started === "switching" || answer.ended === "switching";
      // A request that started in a fault and ran on once it cleared may succeed; then others
      // aimed at the same victim find it gone.
      const straddling = answer.started !== answer.ended;
      const victimGone = straddling && answer.status === 404 && answer.op === "deleteRoute";
      return !explained && !victimGone && !(switching && [500, 502, 503, 504].includes(answer.status));
    });
    const byPhase: Record<string, Record<string, number>> = {};
    for (const phase of ["up", ...Object.keys(faults), "cleared"] as Phase[]) {
      byPhase[phase] = tally(answers.filter((a) => a.started === phase && a.ended === phase));
    }
    const slowest = Math.round(answers.reduce((most, answer) => Math.max(most, answer.ms), 0));
    console.info(
      `engine-faults: ${answers.length} requests under load; ${injected} faults injected (engine 500, 503, hang, slow, refusing); ${unexpected.length} unexpected answers; slowest answer ${slowest} ms`,
      JSON.stringify(byPhase),
    );
    expect(
      unexpected
        .slice(0, 5)
        .map(({ op, status, body, started, ended, error }) => ({ op, status, body, started, ended, error })),
      `${unexpected.length} unexpected answers`,
    ).toEqual([]);

    for (const answer of answers) {
      const phase = answer.started;
      if (phase !== answer.ended || phase === "switching") continue;
      const expected = phase in faults ? expectedStatuses(phase as FaultPhase, answer.op) : [200];
      expect(expected, JSON.stringify(answer)).toContain(answer.status);
    }
    // However slow the engine, writes got through.
    for (const op of ["createApp", "patchApp", "createRoute"]) {
      expect(
        answers.some((a) => a.started === "delay" && a.op === op && a.status === 200),
        `delay ${op}`,
      ).toBe(true);
    }
    for (const phase of Object.keys(faults)) {
      const within = answers.filter((a) => a.started === phase && a.ended === phase);
      expect(
        within.some((a) => writes.has(a.op)),
        `${phase} writes`,
      ).toBe(true);
      for (const op of ["listApps", "invoke"])
        expect(
          within.some((a) => a.op === op),
          `${phase} ${op}`,
        ).toBe(true);
    }
    // A hung function is given up on after its timeout and the margin, not before.
    for (const answer of answers.filter(
      (a) => a.started === "hang" && a.op === "invoke" && a.status === 504,
    )) {
      expect(answer.ms).toBeGreaterThanOrEqual((ROUTE_TIMEOUT_S + INVOKE_MARGIN_S) * 1000 - 100);
    }
    expect(unchanged).toEqual(
      Object.keys(faults)
        .filter((p) => p !== "delay")
        .map((phase) => ({ phase, same: true })),
    );
    expect(answers.filter((a) => a.started === "cleared" && a.op === "invoke").length).toBeGreaterThan(0);

    const reconcile = runCli(["reconcile", "--db-uri", scratch.uri, "--functions-url", fake.apiUrl]);
    const outcome = await reconcile.exited;
    expect(outcome.code, reconcile.output()).toBe(0);
  }, 60_000);
});
