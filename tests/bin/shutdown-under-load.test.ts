// SIGTERM while invocations are in flight: each either completes with 200 or never connects.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postJsonOk, startNoAuthServe } from "../support/cli.ts";
import { testDbUri } from "../support/db.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "../support/ironfunctions/server.ts";

type Outcome =
  | { kind: "response"; status: number; body: string }
  | { kind: "refused" }
  | { kind: "broken"; error: string };

/**
 * One request on a connection of its own (no keep-alive pool), so the only ways to fail are "never
 * connected" (refused: the listener is closed) and "broken" (a reset or close mid-request).
 */
function send(url: string, method = "GET"): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(url, { method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ kind: "response", status: res.statusCode ?? 0, body }));
      res.on("error", (error) => resolve({ kind: "broken", error: String(error) }));
      res.on("aborted", () => resolve({ kind: "broken", error: "response aborted" }));
    });
    req.on("error", (error: NodeJS.ErrnoException) =>
      resolve(error.code === "ECONNREFUSED" ? { kind: "refused" } : { kind: "broken", error: String(error) }),
    );
    req.end();
  });
}

let fake: FakeIronFunctions;
beforeAll(async () => {
  fake = await startFakeIronFunctions();
});
afterAll(() => fake?.stop());

describe("picasso-api serve: graceful shutdown under load", () => {
  it("finishes in-flight invocations, answers 503 on /healthcheck during the delay and exits 0", async () => {
    const { server, base } = await startNoAuthServe({
      functionsUrl: fake.apiUrl,
      args: ["--shutdown-delay", "1", "--shutdown-timeout", "30"],
      env: { PICASSO_DB: testDbUri() },
    });

    const project = "shutdownload";
    const name = `s${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`;
    const post = (path: string, body: unknown) => postJsonOk(base, path, body);
    const created = await post(`/v1/${project}/apps`, { app: { name } });
    const appName = created.app?.name ?? "";
    await post(`/v1/${project}/apps/${appName}/routes`, {
      route: { path: "/sleep", image: "sleep", is_public: true, config: { SLEEP_SECONDS: "2" } },
    });
    const invokeUrl = `${base}/r/${appName}/sleep`;
    fake.clearInvocations();

    const inFlight = Array.from({ length: 20 }, () => send(invokeUrl, "POST"));
    // SIGTERM once every call is running on the engine; each runs 2 s, past the 1 s delay, so the
    // listener closes while they are all still in flight.
    const deadline = Date.now() + 10_000;
    while (fake.invocations.length < 20 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(fake.invocations.length).toBe(20);
    server.child.kill("SIGTERM");

    // During --shutdown-delay the process still serves, with /healthcheck at 503.
    let health: Outcome = await send(`${base}/healthcheck`);
    while (health.kind === "response" && health.status === 200) health = await send(`${base}/healthcheck`);
    expect(health).toEqual({ kind: "response", status: 503, body: "DRAINING" });

    // Keep calling through the delay and past the listener's close: every call must either be
    // answered 200 in full or be refused at connect, never cut off.
    const late: Outcome[] = [];
    for (;;) {
      const outcome = await send(invokeUrl, "POST");
      late.push(outcome);
      if (outcome.kind !== "response") break;
    }

    const outcomes = [...(await Promise.all(inFlight)), ...late];
    for (const outcome of outcomes) {
      if (outcome.kind === "response") {
        expect(outcome).toEqual({ kind: "response", status: 200, body: "slept 2\n" });
      } else {
        expect(outcome).toEqual({ kind: "refused" });
      }
    }
    const completed = (await Promise.all(inFlight)).filter((outcome) => outcome.kind === "response");
    expect(completed).toHaveLength(20);
    expect(late.at(-1)).toEqual({ kind: "refused" });
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.output()).not.toContain("shutdown grace period over");
  }, 60_000);
});
