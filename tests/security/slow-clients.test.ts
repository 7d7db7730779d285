// Slow and oversized clients under load: many connections that trickle their headers, stall in
// their bodies (management and invocation), never say anything, or send too large headers, all
// at once, while fast clients keep working. Each slow client is answered 408 (431 for the large
// headers) in the API's JSON shape and closed within a bound; the fast clients never notice.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startNoAuthServe } from "../support/cli.ts";
import { testDbUri } from "../support/db.ts";
import {
  type Answer,
  caller,
  Phases,
  runClients,
  sleep,
  tally,
  until,
  withoutLimits,
} from "../support/fault-load.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "../support/ironfunctions/server.ts";

const HEADER_TIMEOUT_S = 1;
const BODY_TIMEOUT_S = 1;
const MAX_HEADER_SIZE = 4096;
/** How long any slow client may be held: the timeouts, Node's 1 s check interval, a loaded machine. */
const SLOW_BOUND_MS = 15_000;
const FAST_BOUND_MS = 10_000;
const FAST_CLIENTS = 6;
const PER_KIND = 12;
const project = `slow${Date.now().toString(36)}`;

type SlowKind = "headers" | "silent" | "managementBody" | "invokeBody" | "oversized";
type SlowResult = { kind: SlowKind; status: number; body: unknown; closedAfterMs: number; hung: boolean };
type FastOp = "listApps" | "createApp" | "invoke";

let fake: FakeIronFunctions;
let server: CliProcess;
let port: number;
let app: string;

beforeAll(async () => {
  fake = await startFakeIronFunctions();
  ({ server, port } = await startNoAuthServe({
    functionsUrl: fake.apiUrl,
    args: [
      "--header-timeout",
      String(HEADER_TIMEOUT_S),
      "--body-timeout",
      String(BODY_TIMEOUT_S),
      "--max-header-size",
      String(MAX_HEADER_SIZE),
    ],
    env: { PICASSO_DB: testDbUri(), ...withoutLimits },
  }));
}, 60_000);

afterAll(async () => {
  server?.child.kill("SIGTERM");
  await server?.exited;
  await fake?.stop();
});

/**
 * One slow client on a connection of its own: writes `pieces` with `gapMs` between them, then
 * sends nothing more, and waits for the server to answer and close (or the bound to pass).
 */
function slowClient(kind: SlowKind, pieces: string[], gapMs: number): Promise<SlowResult> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const started = performance.now();
    let raw = "";
    let hung = false;
    const bound = setTimeout(() => {
      hung = true;
      socket.destroy();
    }, SLOW_BOUND_MS);
    socket.on("data", (chunk) => {
      raw += chunk.toString();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(bound);
      const split = raw.indexOf("\r\n\r\n");
      let body: unknown = null;
      try {
        body = split >= 0 ? JSON.parse(raw.slice(split + 4)) : null;
      } catch {
        body = raw.slice(split + 4);
      }
      resolve({
        kind,
        status: raw.startsWith("HTTP/1.1 ") ? Number(raw.slice(9, 12)) : 0,
        body,
        closedAfterMs: performance.now() - started,
        hung,
      });
    });
    socket.on("connect", async () => {
      for (const piece of pieces) {
        if (socket.destroyed) return;
        socket.write(piece);
        await sleep(gapMs);
      }
    });
  });
}

function slowClients(): Promise<SlowResult>[] {
  const clients: Promise<SlowResult>[] = [];
  for (let i = 0; i < PER_KIND; i++) {
    // Headers one line at a time, never finished.
    clients.push(
      slowClient("headers", ["GET /v1/", `${project}/apps HTTP/1.1\r\n`, "Host: x\r\n", "X-Slow: a"], 300),
    );
    // Connects and says nothing.
    clients.push(slowClient("silent", [], 0));
    // A management body that stops after a few pieces.
    clients.push(
      slowClient(
        "managementBody",
        [
          `POST /v1/${project}/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n`,
          '{"app"',
          ': {"name"',
        ],
        300,
      ),
    );
    // An invocation body that stops after a few pieces: the engine call is cancelled too.
    clients.push(
      slowClient(
        "invokeBody",
        [`POST /r/${app}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n`, "some ", "bytes "],
        300,
      ),
    );
    // Headers larger than --max-header-size.
    clients.push(
      slowClient(
        "oversized",
        [`GET /v1/${project}/apps HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(MAX_HEADER_SIZE * 2)}\r\n\r\n`],
        0,
      ),
    );
  }
  return clients;
}

const expectedStatus: Record<SlowKind, number[]> = {
  headers: [408],
  // Node closes a connection that never started a request, with or without a 408.
  silent: [0, 408],
  managementBody: [408],
  invokeBody: [408],
  oversized: [431],
};

describe("slow and oversized clients under load", () => {
  it("answers each slow client 408/431 JSON and closes it in time, while fast clients are served", async () => {
    const phases = new Phases<"load">("load");
    const call = caller<FastOp | "setup", "load">(`http://127.0.0.1:${port}`, phases, FAST_BOUND_MS);
    const created = await call("setup", "POST", `/v1/${project}/apps`, { body: { app: { name: "slow" } } });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    app = `slow-${project}`;
    for (const route of [
      { path: "/hello", image: "hello", is_public: true },
      { path: "/echo", image: "echo", is_public: true },
    ]) {
      const answer = await call("setup", "POST", `/v1/${project}/apps/${app}/routes`, { body: { route } });
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    }

    let counter = 0;
    const fast = runClients(FAST_CLIENTS, async (client, iteration): Promise<Answer[]> => {
      const ops: FastOp[] = ["listApps", "createApp", "invoke"];
      const op = ops[(client + iteration) % ops.length] as FastOp;
      if (op === "listApps") return [await call(op, "GET", `/v1/${project}/apps?limit=5`)];
      if (op === "createApp") {
        const name = `f${(counter++).toString(36)}`;
        return [await call(op, "POST", `/v1/${project}/apps`, { body: { app: { name } } })];
      }
      return [await call(op, "POST", `/r/${app}/hello`, { body: { name: "fast" } })];
    });
    await sleep(300);
    // Two waves, so slow clients keep arriving while earlier ones are still being held.
    const firstWave = slowClients();
    await sleep(700);
    const secondWave = slowClients();
    const slow = await Promise.all([...firstWave, ...secondWave]);
    await sleep(300);
    const answers = await fast.stop();

    const unexpectedSlow = slow.filter(
      (result) =>
        result.hung ||
        !expectedStatus[result.kind].includes(result.status) ||
        (result.status !== 0 &&
          !(result.body as { error?: { code?: string } } | null)?.error?.code?.startsWith("request_")),
    );
    const unexpectedFast = answers.filter((answer) => answer.status !== 200);
    const slowTally: Record<string, number> = {};
    for (const result of slow) {
      const key = `${result.kind} ${result.status}`;
      slowTally[key] = (slowTally[key] ?? 0) + 1;
    }
    const slowest = Math.max(...slow.map((result) => result.closedAfterMs));
    const fastest = answers.reduce((most, answer) => Math.max(most, answer.ms), 0);
    console.info(
      `slow-clients: ${answers.length + slow.length} requests (${answers.length} fast, ${slow.length} slow or oversized); ${slow.length} faults injected; ${unexpectedSlow.length + unexpectedFast.length} unexpected answers; slowest slow client closed after ${Math.round(slowest)} ms, slowest fast request ${Math.round(fastest)} ms`,
      JSON.stringify({ fast: tally(answers), slow: slowTally }),
    );
    expect(unexpectedSlow.slice(0, 5), `${unexpectedSlow.length} unexpected slow-client outcomes`).toEqual(
      [],
    );
    expect(
      unexpectedFast.slice(0, 5).map(({ op, status, body, error }) => ({ op, status, body, error })),
      `${unexpectedFast.length} unexpected fast answers`,
    ).toEqual([]);
    // The fast clients kept going the whole time.
    expect(answers.length).toBeGreaterThan(FAST_CLIENTS * 10);
    for (const op of ["listApps", "createApp", "invoke"]) {
      expect(answers.some((answer) => answer.op === op)).toBe(true);
    }
    // No slow client was held far beyond its timeout (Node checks header timeouts once a second).
    for (const result of slow) {
      if (result.kind === "headers")
        expect(result.closedAfterMs).toBeGreaterThanOrEqual(HEADER_TIMEOUT_S * 1000 - 50);
    }
    // The stalled invocations reached the engine and were cancelled there, none left running.
    const calls = () => fake.invocations.filter((inv) => inv.path === "/echo");
    await until("the stalled invocations end on the engine", async () =>
      calls().every((inv) => inv.status !== "running" && inv.status !== "queued"),
    );
    expect(calls().length).toBe(PER_KIND * 2);
    expect(calls().every((inv) => inv.status === "error")).toBe(true);
  }, 60_000);
});
