// Rate limits with counters in the real Redis, over real HTTP: two app instances (two Redis
// connections) enforce one limit; Redis down lets invocations through (open) or answers 503
// (closed), and readiness and metrics say so; Redis coming back restores the limit.
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../../app/lib/logger.ts";
import { listen } from "../../../app/node/server.ts";
import { createMetrics, type Metrics } from "../../../app/services/metrics/index.ts";
import { createRateLimiter } from "../../../app/services/rate-limit/index.ts";
import type { RedisConnection } from "../../../app/services/redis/index.ts";
import type { AppServices } from "../../../app/types.ts";
import { testApp } from "../../support/app.ts";
import { openTestDatabase } from "../../support/db.ts";
import { invocationEngine, seedRoute } from "../../support/invoke-harness.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "../../support/ironfunctions/server.ts";
import {
  eventually,
  freshKeyPrefix,
  inOneWindow,
  testRedis,
  testRedisUrl,
  waitUntilReady,
} from "../../support/rate-limit.ts";
import { startTcpProxy, type TcpProxy } from "../../support/tcp-proxy.ts";

const database = openTestDatabase();
const redisTarget = {
  host: new URL(testRedisUrl).hostname,
  port: Number(new URL(testRedisUrl).port || 6379),
};
/** 2/s + 2 at once, for public and private alike. */
const atOnce = 4;
let fake: FakeIronFunctions;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  fake = await startFakeIronFunctions();
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await fake.stop();
  await database.close();
});

type Instance = { base: string; services: AppServices; metrics: Metrics; redis: RedisConnection };

/** One Picasso instance over HTTP: its own engine client, Redis connection and limiter. */
async function startInstance(options: {
  redisUrl?: string;
  keyPrefix: string;
  onRedisFailure?: "open" | "closed";
}): Promise<Instance> {
  const redis = testRedis(options.redisUrl);
  const engine = invocationEngine(fake.url);
  const metrics = createMetrics();
  const { app, services } = testApp(database, {
    engine,
    metrics,
    redis,
    operator: { healthCacheMs: 0, healthTimeoutMs: 2000 },
    rateLimiter: createRateLimiter({
      defaults: { public: { rate: 2, burst: 2 }, private: { rate: 2, burst: 2 } },
      redis: redis.client,
      keyPrefix: options.keyPrefix,
      onRedisFailure: options.onRedisFailure,
      logger: silentLogger,
      metrics,
    }),
  });
  const server = await listen({
    fetch: app.fetch,
    host: "127.0.0.1",
    port: 0,
    logger: silentLogger,
    lifecycle: services.lifecycle,
  });
  cleanups.push(async () => {
    await server.shutdown(1000);
    await engine.close();
    await redis.close();
  });
  await waitUntilReady(redis);
  return { base: `http://127.0.0.1:${server.port}`, services, metrics, redis };
}

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

function send(url: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { localAddress: "127.0.0.2", agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

const statusesOf = (answers: Answer[]) => answers.map((answer) => answer.status).sort();
const reachedEngine = (engineApp: string) =>
  fake.invocations.filter((invocation) => invocation.app === engineApp).length;

async function readiness(instance: Instance) {
  const response = await fetch(`${instance.base}/healthcheck?detailed=1`);
  return { status: response.status, report: await response.json() };
}

async function redisThroughProxy(onRedisFailure: "open" | "closed") {
  const proxy = await startTcpProxy(redisTarget);
  cleanups.push(() => proxy.stop());
  const instance = await startInstance({
    redisUrl: `redis://127.0.0.1:${proxy.port}`,
    keyPrefix: freshKeyPrefix(),
    onRedisFailure,
  });
  return { proxy, instance };
}

/** Takes Redis away from the instance and waits until its connection has noticed. */
async function takeRedisAway(proxy: TcpProxy, instance: Instance) {
  await proxy.stop();
  await eventually(() => expect(instance.redis.ping()).rejects.toThrow(/not connected/));
}

describe("rate limits shared through Redis", () => {
  it("two instances enforce one limit", async () => {
    const keyPrefix = freshKeyPrefix();
    const [one, two] = await Promise.all([startInstance({ keyPrefix }), startInstance({ keyPrefix })]);
    const { answers, engineApp } = await inOneWindow(async () => {
      const seeded = await seedRoute(database, fake);
      const path = `/r/${seeded.appName}/hello`;
      const calls = Array.from({ length: 10 }, (_, index) => send(`${(index % 2 ? one : two).base}${path}`));
      return { engineApp: seeded.engineApp, answers: await Promise.all(calls) };
    });
    expect(statusesOf(answers)).toEqual([...Array(atOnce).fill(200), ...Array(10 - atOnce).fill(429)]);
    expect(reachedEngine(engineApp)).toBe(atOnce);
    for (const instance of [one, two]) {
      const { status, report } = await readiness(instance);
      expect(status).toBe(200);
      expect(report.checks.redis).toMatchObject({ status: "ok", critical: false });
    }
  });

  it("Redis down, failing open: invocations go through unlimited; readiness says degraded with the reason", async () => {
    const { proxy, instance } = await redisThroughProxy("open");
    const { appName, engineApp } = await seedRoute(database, fake);
    await takeRedisAway(proxy, instance);
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => send(`${instance.base}/r/${appName}/hello`)),
    );
    expect(statusesOf(answers)).toEqual(Array(8).fill(200));
    expect(answers.every((answer) => answer.headers["x-ratelimit-limit"] === undefined)).toBe(true);
    expect(reachedEngine(engineApp)).toBe(8);
    const { status, report } = await readiness(instance);
    expect(status).toBe(200);
    expect(report.status).toBe("degraded");
    expect(report.checks.redis).toMatchObject({
      status: "error",
      critical: false,
      error: "ECONNREFUSED",
      message: expect.stringMatching(/Redis is not connected: .*ECONNREFUSED/),
    });
    const metrics = await instance.metrics.registry.getSingleMetricAsString(
      "picasso_rate_limit_redis_failures_total",
    );
    expect(metrics).toMatch(/result="allowed"\} 8/);
  });

  it("Redis down, failing closed: 503 JSON with Retry-After and the engine is never called; then Redis returns", async () => {
    const { proxy, instance } = await redisThroughProxy("closed");
    const { appName, engineApp } = await seedRoute(database, fake);
    const url = `${instance.base}/r/${appName}/hello`;
    await takeRedisAway(proxy, instance);
    const refused = await send(url);
    expect(refused.status).toBe(503);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(JSON.parse(refused.body)).toEqual({
      error: { code: "service_unavailable", message: "Rate limiting is unavailable; try again later" },
    });
    expect(reachedEngine(engineApp)).toBe(0);
    expect((await readiness(instance)).report.checks.redis.status).toBe("error");

    // Redis comes back on the same address: the connection recovers by itself.
    const back = await startTcpProxy(redisTarget, "pipe", proxy.port);
    cleanups.push(() => back.stop());
    await eventually(async () => expect((await readiness(instance)).report.checks.redis.status).toBe("ok"));
    const answers = await inOneWindow(async (round) => {
      const seeded = round === 0 ? { appName } : await seedRoute(database, fake);
      return Promise.all(Array.from({ length: 6 }, () => send(`${instance.base}/r/${seeded.appName}/hello`)));
    });
    expect(statusesOf(answers)).toEqual([...Array(atOnce).fill(200), 429, 429]);
  });
});
