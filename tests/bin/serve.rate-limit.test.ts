// `picasso-api serve` with rate limits as an operator configures them: counters in Redis, limits
// from the flags, Redis in the detailed health check, limited invocations in /metrics.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, postJsonOk, startNoAuthServe } from "../support/cli.ts";
import { testDbUri } from "../support/db.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "../support/ironfunctions/server.ts";
import { inOneWindow, testRedisUrl } from "../support/rate-limit.ts";

let fake: FakeIronFunctions;
beforeAll(async () => {
  fake = await startFakeIronFunctions();
});
afterAll(() => fake?.stop());

const startServe = (
  redisUrl: string,
  extraArgs: string[] = ["--rate-limit-public", "1", "--rate-limit-public-burst", "1"],
) =>
  startNoAuthServe({
    functionsUrl: fake.apiUrl,
    args: ["--redis-url", redisUrl, ...extraArgs, "--healthcheck-cache", "0"],
    env: { PICASSO_DB: testDbUri() },
  });

const readiness = async (base: string) =>
  (await (await fetch(`${base}/healthcheck?detailed=1`)).json()) as {
    status: string;
    checks: Record<string, { status: string; error?: string }>;
  };

describe("picasso-api serve with --redis-url", () => {
  it("limits public invocations through Redis, reports it ready and counts the refusals", async () => {
    const { server, base } = await startServe(testRedisUrl);
    await expect.poll(async () => (await readiness(base)).checks.redis?.status).toBe("ok");
    const project = "servelimits";
    const post = (path: string, body: unknown) => postJsonOk(base, path, body);
    const created = await post(`/v1/${project}/apps`, {
      app: { name: `r${randomBytes(5).toString("hex")}` },
    });
    const appName = created.app?.name ?? "";
    const statuses = await inOneWindow(async (round) => {
      await post(`/v1/${project}/apps/${appName}/routes`, {
        route: { path: `/hello${round}`, image: "hello", is_public: true },
      });
      const answers = await Promise.all(
        Array.from({ length: 4 }, () => fetch(`${base}/r/${appName}/hello${round}`)),
      );
      await Promise.all(answers.map((answer) => answer.arrayBuffer()));
      return answers.map((answer) => answer.status).sort();
    });
    expect(statuses).toEqual([200, 200, 429, 429]);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const refusals = /^picasso_rate_limited_total\{kind="public"\} (\d+)$/m.exec(metrics)?.[1];
    expect(Number(refusals)).toBeGreaterThanOrEqual(2);
    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.output()).toContain("rate limits");
  });

  it("starts with Redis unreachable and reports it in readiness, failing open", async () => {
    const { server, base } = await startServe(`redis://127.0.0.1:${await freePort()}`);
    // The first connection attempt may still be under way at the first probe.
    await expect.poll(async () => (await readiness(base)).checks.redis?.error).toBe("ECONNREFUSED");
    expect((await readiness(base)).status).toBe("degraded");
    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });

  it("counts a project's running invocations in Redis: two instances enforce one concurrency quota", async () => {
    const quotaArgs = ["--quota-concurrent-invocations", "1", "--rate-limit-public", "0"];
    const first = await startServe(testRedisUrl, quotaArgs);
    const second = await startServe(testRedisUrl, quotaArgs);
    for (const { base } of [first, second]) {
      await expect.poll(async () => (await readiness(base)).checks.redis?.status).toBe("ok");
    }
    const project = `servequota${randomBytes(4).toString("hex")}`;
    const created = await postJsonOk(first.base, `/v1/${project}/apps`, {
      app: { name: `q${randomBytes(5).toString("hex")}` },
    });
    const appName = created.app?.name ?? "";
    await postJsonOk(first.base, `/v1/${project}/apps/${appName}/routes`, {
      route: { path: "/hello", image: "hello", is_public: true },
    });

    fake.clearRequests();
    fake.setFault({ kind: "hang", scope: "r" });
    const holder = new AbortController();
    const held = fetch(`${first.base}/r/${appName}/hello`, { signal: holder.signal }).catch(() => null);
    try {
      await expect.poll(() => fake.requests.some((request) => request.path.startsWith("/r/"))).toBe(true);
      // The first instance's call holds the project's only slot, in Redis: the other instance sees it.
      await expect
        .poll(async () => {
          const answer = await fetch(`${second.base}/r/${appName}/hello`);
          return {
            status: answer.status,
            body: await answer.text(),
            retryAfter: answer.headers.get("retry-after"),
          };
        })
        .toMatchObject({
          status: 429,
          body: expect.stringContaining("concurrency_quota_exceeded"),
          retryAfter: "1",
        });
    } finally {
      holder.abort();
      await held;
      fake.setFault(null);
    }
    // The slot came back when the client went away.
    await expect.poll(async () => (await fetch(`${second.base}/r/${appName}/hello`)).status).toBe(200);
    for (const { server } of [first, second]) server.child.kill("SIGTERM");
    expect(await first.server.exited).toEqual({ code: 0, signal: null });
    expect(await second.server.exited).toEqual({ code: 0, signal: null });
  });
});
