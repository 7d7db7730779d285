// The rate limiter with counters in the real Redis: limiters on two connections (two instances)
// enforce one limit; Redis unreachable fails open or closed as configured; Redis coming back
// is noticed without a restart.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { ApiError } from "../../../app/lib/errors.ts";
import { createMetrics, type Metrics } from "../../../app/services/metrics/index.ts";
import { createRateLimiter, type RateLimitCount } from "../../../app/services/rate-limit/index.ts";
import type { RedisConnection } from "../../../app/services/redis/index.ts";
import { recordingLogger } from "../../support/logger.ts";
import {
  eventually,
  freshKeyPrefix,
  inOneWindow,
  testRedis,
  testRedisUrl,
  waitUntilReady,
} from "../../support/rate-limit.ts";
import { startTcpProxy, type TcpProxy } from "../../support/tcp-proxy.ts";

const redisTarget = {
  host: new URL(testRedisUrl).hostname,
  port: Number(new URL(testRedisUrl).port || 6379),
};
const defaults = { public: { rate: 3, burst: 4 }, private: { rate: 3, burst: 4 } };
const opened: RedisConnection[] = [];
const proxies: TcpProxy[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((redis) => redis.close()));
  await Promise.all(proxies.splice(0).map((proxy) => proxy.stop()));
});
afterAll(async () => {
  await Promise.all(opened.map((redis) => redis.close()));
});

async function connected(url = testRedisUrl): Promise<RedisConnection> {
  const redis = testRedis(url);
  opened.push(redis);
  await waitUntilReady(redis);
  return redis;
}

function limiterOn(redis: RedisConnection, keyPrefix: string, onRedisFailure: "open" | "closed" = "open") {
  const metrics = createMetrics();
  const logger = recordingLogger();
  const limiter = createRateLimiter({
    defaults,
    redis: redis.client,
    keyPrefix,
    onRedisFailure,
    logger,
    metrics,
  });
  return { limiter, metrics, logger };
}

const count = (route: string): RateLimitCount => ({
  kind: "public",
  route,
  caller: "203.0.113.1",
  rate: null,
  burst: null,
});

const failures = async (metrics: Metrics) =>
  metrics.registry.getSingleMetricAsString("picasso_rate_limit_redis_failures_total");

describe("rate limiter (Redis)", () => {
  it("two limiters on two connections to one Redis enforce one limit", async () => {
    const prefix = freshKeyPrefix();
    const one = limiterOn(await connected(), prefix).limiter;
    const two = limiterOn(await connected(), prefix).limiter;
    const outcomes = await inOneWindow(async (round) => {
      const what = count(`shared-${round}`);
      return Promise.allSettled(
        Array.from({ length: 12 }, (_, index) => (index % 2 === 0 ? one : two).consume(what)),
      );
    });
    expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(7);
    const refused = outcomes.filter((outcome) => outcome.status === "rejected");
    expect(refused).toHaveLength(5);
    for (const outcome of refused) {
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({
        status: 429,
        code: "rate_limited",
        headers: { "retry-after": "1", "x-ratelimit-limit": "3", "x-ratelimit-remaining": "0" },
      });
    }
  });

  it("fails open when Redis is unreachable: allowed, counted and logged without flooding", async () => {
    const proxy = await startTcpProxy(redisTarget);
    proxies.push(proxy);
    const redis = await connected(`redis://127.0.0.1:${proxy.port}`);
    const { limiter, metrics, logger } = limiterOn(redis, freshKeyPrefix(), "open");
    expect(await limiter.consume(count("open"))).toMatchObject({ "x-ratelimit-limit": "3" });
    await proxy.stop();
    await eventually(() => expect(redis.ping()).rejects.toThrow(/not connected/));
    // Far past the limit, all let through without headers.
    const answers = await Promise.all(Array.from({ length: 20 }, () => limiter.consume(count("open"))));
    expect(answers).toEqual(Array(20).fill(null));
    expect(await failures(metrics)).toMatch(/result="allowed"\} 20/);
    const warnings = logger.entries.filter((entry) => entry.message.includes("Redis failed"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.fields).toMatchObject({ policy: "open" });
  });

  it("fails closed when so configured: 503 with Retry-After", async () => {
    const proxy = await startTcpProxy(redisTarget);
    proxies.push(proxy);
    const redis = await connected(`redis://127.0.0.1:${proxy.port}`);
    const { limiter, metrics } = limiterOn(redis, freshKeyPrefix(), "closed");
    await proxy.stop();
    await eventually(() => expect(redis.ping()).rejects.toThrow());
    const error = (await limiter.consume(count("closed")).catch((caught) => caught)) as ApiError;
    expect(error).toMatchObject({
      status: 503,
      code: "service_unavailable",
      headers: { "retry-after": "1" },
    });
    expect(await failures(metrics)).toMatch(/result="refused"\} 1/);
  });

  it("fails fast on a Redis that accepts connections but never answers", async () => {
    const proxy = await startTcpProxy(redisTarget, "blackhole");
    proxies.push(proxy);
    const redis = testRedis(`redis://127.0.0.1:${proxy.port}`);
    opened.push(redis);
    const { limiter } = limiterOn(redis, freshKeyPrefix(), "closed");
    const started = performance.now();
    await expect(limiter.consume(count("hung"))).rejects.toMatchObject({ status: 503 });
    // Not connected yet, so refused at once rather than queued behind the connect timeout.
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("limits again once Redis is back, without a restart", async () => {
    const proxy = await startTcpProxy(redisTarget);
    const redis = await connected(`redis://127.0.0.1:${proxy.port}`);
    const { limiter } = limiterOn(redis, freshKeyPrefix(), "closed");
    await proxy.stop();
    await eventually(() => expect(limiter.consume(count("back"))).rejects.toMatchObject({ status: 503 }));
    proxies.push(await startTcpProxy(redisTarget, "pipe", proxy.port));
    await eventually(() => redis.ping());
    const headers = await eventually(() => limiter.consume(count("back")));
    expect(headers).toMatchObject({ "x-ratelimit-limit": "3" });
    const { length } = (
      await Promise.allSettled(Array.from({ length: 10 }, () => limiter.consume(count("back-2"))))
    ).filter((outcome) => outcome.status === "fulfilled");
    expect(length).toBeLessThanOrEqual(7);
  });
});
