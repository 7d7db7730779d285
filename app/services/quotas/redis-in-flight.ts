import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { ApiError } from "../../lib/errors.ts";
import type { InFlightCounter, ReleaseSlot } from "./in-flight.ts";

export type RedisInFlightOptions = {
  /** Prefix of the per-project keys; default `picasso:inflight:`. */
  keyPrefix?: string;
  /** Redis failed or did not answer: true lets the invocation run uncounted, false answers 503. */
  failOpen: boolean;
  /** A Redis command gives up after this long (default 1000 ms), so invocations never hang on it. */
  commandTimeoutMs?: number;
  /** Told about every Redis failure (for logs and metrics). */
  onError?: (error: Error) => void;
};

/**
 * Each slot is a lease in the project's sorted set, scored by when it expires (Redis' clock, so
 * instances' clocks need not agree). Acquiring drops expired leases first, so a slot whose
 * instance died frees itself once its lease runs out; the key itself expires with its last lease.
 */
const acquireScript = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[1])
if limit >= 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
return 1
`;

const inUseScript = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`;

type WithScripts = Redis & {
  picassoAcquireInFlight(key: string, limit: number, leaseMs: number, leaseId: string): Promise<number>;
  picassoInFlightInUse(key: string): Promise<number>;
};

class RedisTimeout extends Error {
  override name = "RedisTimeout";
}

/** Shared by every instance on the same Redis: N instances enforce one limit per project. */
export function createRedisInFlightCounter(redis: Redis, options: RedisInFlightOptions): InFlightCounter {
  const client = redis as WithScripts;
  if (typeof client.picassoAcquireInFlight !== "function") {
    redis.defineCommand("picassoAcquireInFlight", { numberOfKeys: 1, lua: acquireScript });
    redis.defineCommand("picassoInFlightInUse", { numberOfKeys: 1, lua: inUseScript });
  }
  const prefix = options.keyPrefix ?? "picasso:inflight:";
  const timeoutMs = options.commandTimeoutMs ?? 1000;
  const report = (error: unknown) => options.onError?.(error as Error);

  /** Rejects after the timeout; `late` runs with the result if the command answers afterwards. */
  function bounded<T>(command: Promise<T>, late?: (value: T) => void): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new RedisTimeout(`Redis did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    command.then(
      (value) => {
        if (timedOut) late?.(value);
      },
      () => {},
    );
    return Promise.race([command, timeout]).finally(() => clearTimeout(timer));
  }

  function releaser(key: string, leaseId: string): ReleaseSlot {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // If this fails, the lease still expires on its own.
      client.zrem(key, leaseId).catch(report);
    };
  }

  return {
    async acquire(projectId, limit, leaseMs) {
      const key = prefix + projectId;
      const leaseId = randomUUID();
      try {
        const taken = await bounded(
          client.picassoAcquireInFlight(key, limit, Math.max(1, Math.ceil(leaseMs)), leaseId),
          // Answered after we gave up: nobody holds that slot, give it back now.
          (late) => {
            if (late === 1) releaser(key, leaseId)();
          },
        );
        return taken === 1 ? releaser(key, leaseId) : null;
      } catch (error) {
        report(error);
        if (options.failOpen) return () => {};
        throw new ApiError("service_unavailable", "Cannot count concurrent invocations right now", {
          headers: { "Retry-After": "1" },
          cause: error,
        });
      }
    },
    async inUse(projectId) {
      try {
        return Number(await bounded(client.picassoInFlightInUse(prefix + projectId)));
      } catch (error) {
        report(error);
        throw new ApiError("service_unavailable", "Cannot count concurrent invocations right now", {
          headers: { "Retry-After": "1" },
          cause: error,
        });
      }
    },
  };
}
