// The rate limiter with counters in memory: rate plus burst at once, then the rate per second;
// route fields over defaults; one bucket per kind, route and caller.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../../app/lib/errors.ts";
import { silentLogger } from "../../../app/lib/logger.ts";
import { createMetrics } from "../../../app/services/metrics/index.ts";
import {
  createRateLimiter,
  type RateLimitCount,
  type RateLimiter,
  type RateLimiterOptions,
  unknownClient,
} from "../../../app/services/rate-limit/index.ts";
import { recordingLogger } from "../../support/logger.ts";
import { eventually, inOneWindow } from "../../support/rate-limit.ts";

const defaults: RateLimiterOptions["defaults"] = {
  public: { rate: 2, burst: 3 },
  private: { rate: 4, burst: 0 },
};

function limiter(overrides: Partial<RateLimiterOptions> = {}) {
  const metrics = createMetrics();
  return {
    metrics,
    limiter: createRateLimiter({ defaults, logger: silentLogger, metrics, ...overrides }),
  };
}

const count = (fields: Partial<RateLimitCount> = {}): RateLimitCount => ({
  kind: "public",
  route: `route-${randomUUID()}`,
  caller: "203.0.113.1",
  rate: null,
  burst: null,
  ...fields,
});

/** Sends `n` at once; returns the allowed ones' headers and the refusals. */
async function burst(limiter: RateLimiter, what: RateLimitCount, n: number) {
  const settled = await Promise.allSettled(Array.from({ length: n }, () => limiter.consume(what)));
  const allowed = settled.filter((s) => s.status === "fulfilled").map((s) => s.value);
  const refused = settled.filter((s) => s.status === "rejected").map((s) => s.reason as ApiError);
  return { allowed, refused };
}

describe("rate limiter (in memory)", () => {
  it("lets exactly rate + burst through at once, then refuses with 429, Retry-After and X-RateLimit-*", async () => {
    const { limiter: rl, metrics } = limiter();
    const { allowed, refused } = await inOneWindow(() => burst(rl, count(), 9));
    expect(allowed).toHaveLength(5);
    expect(refused).toHaveLength(4);
    for (const error of refused) {
      expect(error).toBeInstanceOf(ApiError);
      expect(error.status).toBe(429);
      expect(error.code).toBe("rate_limited");
      expect(error.message).toMatch(/at most 2 invocations per second plus a burst of 3; retry after 1 s/);
      expect(error.headers).toEqual({
        "retry-after": "1",
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "1",
      });
    }
    // What is left of the second counts down; the burst allowance is not in it.
    expect(allowed.map((headers) => headers?.["x-ratelimit-remaining"])).toEqual(["1", "0", "0", "0", "0"]);
    expect(allowed.every((headers) => headers?.["x-ratelimit-limit"] === "2")).toBe(true);
    expect(await metrics.registry.getSingleMetricAsString("picasso_rate_limited_total")).toMatch(
      /picasso_rate_limited_total\{kind="public"\} 4/,
    );
  });

  it("then allows the rate again once the second is over, but not the burst", async () => {
    const { limiter: rl } = limiter();
    const what = count();
    await inOneWindow(async (round) => {
      if (round > 0) what.route = `${what.route}-again`;
      return burst(rl, what, 5);
    });
    await expect(rl.consume(what)).rejects.toMatchObject({ code: "rate_limited" });
    // Polled: the first one let through opens the next second.
    await eventually(() => rl.consume(what), 3000);
    const { allowed, refused } = await burst(rl, what, 3);
    expect(allowed).toHaveLength(1);
    expect(refused).toHaveLength(2);
  });

  it("a route's own rate_limit and rate_limit_burst win over the defaults; null takes the default", async () => {
    const { limiter: rl } = limiter();
    const own = await inOneWindow(() => burst(rl, count({ rate: 1, burst: 1 }), 6));
    expect(own.allowed).toHaveLength(2);
    expect(own.refused[0]?.headers["x-ratelimit-limit"]).toBe("1");
    const ownRate = await inOneWindow(() => burst(rl, count({ rate: 5 }), 12));
    expect(ownRate.allowed).toHaveLength(8);
    const ownBurst = await inOneWindow(() => burst(rl, count({ burst: 0 }), 6));
    expect(ownBurst.allowed).toHaveLength(2);
  });

  it("keeps each route's own policy when invocations of routes with different policies interleave", async () => {
    const { limiter: rl } = limiter();
    // Policies that differ from the first only in rate, and only in burst; fresh routes (empty
    // buckets) for each attempt inOneWindow makes.
    const newRoutes = () => ({
      strict: count({ rate: 1, burst: 0 }),
      faster: count({ rate: 3, burst: 0 }),
      bursty: count({ rate: 1, burst: 2 }),
    });
    const order: (keyof ReturnType<typeof newRoutes>)[] = [
      "strict",
      "faster",
      "bursty",
      "strict",
      "faster",
      "bursty",
      "faster",
      "bursty",
      "faster",
      "bursty",
      "strict",
    ];
    const outcomes = await inOneWindow(async () => {
      const routes = newRoutes();
      const seen: string[] = [];
      for (const name of order) {
        const allowed = await rl.consume(routes[name]).then(
          () => true,
          () => false,
        );
        seen.push(`${name}:${allowed ? "allowed" : "refused"}`);
      }
      return seen;
    });
    expect(outcomes).toEqual([
      "strict:allowed",
      "faster:allowed",
      "bursty:allowed",
      "strict:refused",
      "faster:allowed",
      "bursty:allowed",
      "faster:allowed",
      "bursty:allowed",
      "faster:refused",
      "bursty:refused",
      "strict:refused",
    ]);
  });

  it("a default rate of 0 leaves routes without their own limit unlimited, without headers", async () => {
    const { limiter: rl } = limiter({
      defaults: { public: { rate: 0, burst: 5 }, private: { rate: 0, burst: 0 } },
    });
    const free = await burst(rl, count(), 50);
    expect(free.refused).toHaveLength(0);
    expect(free.allowed.every((headers) => headers === null)).toBe(true);
    // The route's own limit still applies, with the default burst.
    const limited = await inOneWindow(() => burst(rl, count({ rate: 2 }), 10));
    expect(limited.allowed).toHaveLength(7);
  });

  it("keeps one bucket per kind, route and caller", async () => {
    const { limiter: rl } = limiter();
    const base = count();
    const results = await inOneWindow(async (round) => {
      const what = { ...base, route: `${base.route}-${round}` };
      return Promise.all([
        burst(rl, what, 7),
        burst(rl, { ...what, caller: "203.0.113.2" }, 7),
        burst(rl, { ...what, route: `${what.route}-other` }, 7),
        burst(rl, { ...what, kind: "private", caller: "project-a" }, 7),
        burst(rl, { ...what, kind: "private", caller: "project-b" }, 7),
      ]);
    });
    expect(results.map((result) => result.allowed.length)).toEqual([5, 5, 5, 4, 4]);
  });

  it("gives callers without a known address one shared bucket and says so once", async () => {
    const logger = recordingLogger();
    const { limiter: rl } = limiter({ logger });
    expect(rl.clientAddress(undefined, () => "198.51.100.1")).toBe(unknownClient);
    expect(rl.clientAddress(undefined, () => undefined)).toBe(unknownClient);
    expect(logger.entries.filter((entry) => entry.level === "warn")).toHaveLength(1);
    expect(rl.clientAddress("::ffff:203.0.113.7", () => "198.51.100.1")).toBe("203.0.113.7");
  });
});
