/**
 * Rate limits on invocations. Each invocation counts in one bucket per route and caller (the
 * client address for public invocations, the project for private ones). A bucket allows `rate`
 * invocations per second plus a burst allowance of `burst` more, drawn on only when the second's
 * `rate` is used up and given back a minute after it was first drawn on: rate-limiter-flexible's
 * BurstyRateLimiter over two fixed windows. Counters live in this process, or in Redis so that
 * every instance enforces the same limit.
 */
import type { Redis } from "ioredis";
import { LRUCache } from "lru-cache";
import {
  BurstyRateLimiter,
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from "rate-limiter-flexible";
import { ApiError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logger.ts";
import { throttledWarning } from "../../lib/throttled-log.ts";
import type { Metrics, RateLimitKind } from "../metrics/index.ts";
import { clientAddress, type TrustedProxies } from "./client-address.ts";

/** Invocations per second, and how many more may come at once above that. */
export type RateLimitPolicy = { rate: number; burst: number };

/** What one invocation is counted as; a route's own `rate`/`burst` (null: the default) win. */
export type RateLimitCount = {
  kind: RateLimitKind;
  /** The route's id: buckets are per route. */
  route: string;
  /** The client address (public) or the project id (private). */
  caller: string;
  rate: number | null;
  burst: number | null;
};

/** `X-RateLimit-*` headers for the response, lower-case as Node writes them. */
export type RateLimitHeaders = Record<string, string>;

export interface RateLimiter {
  /**
   * Counts one invocation. Resolves to the headers describing the caller's bucket, or null when the
   * invocation is not limited at all. Throws ApiError `rate_limited` (429, with `Retry-After`) when
   * the bucket is empty, and `service_unavailable` (503) when Redis fails and the limiter fails closed.
   */
  consume(count: RateLimitCount): Promise<RateLimitHeaders | null>;
  /**
   * Who a public invocation comes from: the socket's peer address, or from X-Forwarded-For when
   * that peer is a trusted proxy. `peer` is undefined where the runtime gives no socket.
   */
  clientAddress(peer: string | undefined, forwardedFor: () => string | undefined): string;
}

export type RateLimiterOptions = {
  /** Per kind, for routes without their own; a rate of 0 leaves such routes unlimited. */
  defaults: Record<RateLimitKind, RateLimitPolicy>;
  trustedProxies?: TrustedProxies;
  /** Counters in Redis (shared by every instance) instead of in this process. */
  redis?: Redis;
  /** Prefix of the Redis keys (default `picasso:rl`); tests give each run its own. */
  keyPrefix?: string;
  /** What an invocation gets when Redis fails: `open` lets it through, `closed` answers 503. */
  onRedisFailure?: "open" | "closed";
  logger: Logger;
  metrics: Metrics;
};

/** The burst allowance comes back this long after it was first drawn on. */
export const burstWindowSeconds = 60;

/** Distinct (rate, burst) pairs kept; each has its own limiters (and, in memory, counters). */
const maxPolicies = 10_000;

/** A caller whose address the runtime does not give: all such callers share one bucket. */
export const unknownClient = "unknown";

type Limiter = Pick<RateLimiterAbstract, "consume">;

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { logger, metrics, redis } = options;
  const keyPrefix = options.keyPrefix ?? "picasso:rl";
  const failClosed = options.onRedisFailure === "closed";
  const trusted = options.trustedProxies ?? null;
  const warnRedisFailure = throttledWarning(logger, "rate limit not checked: Redis failed", 10_000);
  let warnedNoSocket = false;

  const store = (points: number, duration: number, prefix: string) =>
    redis
      ? new RateLimiterRedis({
          storeClient: redis,
          keyPrefix: `${keyPrefix}:${prefix}`,
          points,
          duration,
          rejectIfRedisNotReady: true,
          // A caller over the limit is refused from memory until its window ends: abusive
          // traffic costs no Redis round trip.
          inMemoryBlockOnConsumed: points + 1,
        })
      : new RateLimiterMemory({ keyPrefix: prefix, points, duration });

  // Limiters are built once per (rate, burst) pair and reused: none is made per request.
  const limiters = new LRUCache<string, Limiter>({ max: maxPolicies });
  // Most invocations run under the same few policies: the last one's limiter is kept at hand,
  // which skips building the key and the LRU's per-call option handling (a quarter of consume).
  let recent: { rate: number; burst: number; limiter: Limiter } | null = null;
  const limiterFor = (rate: number, burst: number): Limiter => {
    if (recent !== null && recent.rate === rate && recent.burst === burst) return recent.limiter;
    const id = `${rate}/${burst}`;
    let limiter = limiters.get(id);
    if (!limiter) {
      const perSecond = store(rate, 1, "rate");
      limiter =
        burst > 0 ? new BurstyRateLimiter(perSecond, store(burst, burstWindowSeconds, "burst")) : perSecond;
      limiters.set(id, limiter);
    }
    recent = { rate, burst, limiter };
    return limiter;
  };

  return {
    async consume(count) {
      const fallback = options.defaults[count.kind];
      const rate = count.rate ?? fallback.rate;
      if (rate <= 0) return null;
      const burst = count.burst ?? fallback.burst;
      const key = `${count.kind}:${count.route}:${count.caller}`;
      let result: RateLimiterRes;
      try {
        result = await limiterFor(rate, burst).consume(key);
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) {
          metrics.rateLimited.inc({ kind: count.kind });
          const headers = headersOf(rate, rejection);
          throw new ApiError(
            "rate_limited",
            `Rate limit exceeded: at most ${rate} invocations per second plus a burst of ${burst}; retry after ${headers["x-ratelimit-reset"]} s`,
            { headers: { "retry-after": headers["x-ratelimit-reset"] ?? "1", ...headers } },
          );
        }
        metrics.rateLimitRedisFailures.inc({ result: failClosed ? "refused" : "allowed" });
        warnRedisFailure({
          error: (rejection as Error)?.message ?? String(rejection),
          policy: failClosed ? "closed" : "open",
        });
        if (failClosed) {
          throw new ApiError("service_unavailable", "Rate limiting is unavailable; try again later", {
            headers: { "retry-after": "1" },
          });
        }
        return null;
      }
      return headersOf(rate, result);
    },

    clientAddress(peer, forwardedFor) {
      if (peer === undefined) {
        if (!warnedNoSocket) {
          warnedNoSocket = true;
          logger.warn(
            "the runtime gives no client address: public invocations of a route share one rate limit bucket",
          );
        }
        return unknownClient;
      }
      return clientAddress(peer, forwardedFor, trusted);
    },
  };
}

/** Whole seconds, rounded up and at least 1: a client told 0 would retry at once. */
function secondsUntil(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function headersOf(rate: number, result: RateLimiterRes): RateLimitHeaders {
  return {
    "x-ratelimit-limit": String(rate),
    "x-ratelimit-remaining": String(Math.max(0, result.remainingPoints)),
    "x-ratelimit-reset": String(secondsUntil(result.msBeforeNext)),
  };
}
