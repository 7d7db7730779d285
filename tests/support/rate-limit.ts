import { randomBytes } from "node:crypto";
import { silentLogger } from "../../app/lib/logger.ts";
import { connectRedis, type RedisConnection } from "../../app/services/redis/index.ts";

/** The Redis the tests share (scripts/redis.sh starts it); every test uses keys of its own. */
export const testRedisUrl = process.env.PICASSO_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A key prefix no other run or test shares, so counters never carry over. */
export const freshKeyPrefix = () =>
  `picasso-test:${Date.now().toString(36)}:${randomBytes(4).toString("hex")}`;

export function testRedis(url = testRedisUrl): RedisConnection {
  return connectRedis(url, { logger: silentLogger, connectTimeoutMs: 1000, commandTimeoutMs: 1000 });
}

/** Polls until `check` holds (it may throw meanwhile), failing after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

export async function waitUntilReady(redis: RedisConnection): Promise<void> {
  await eventually(() => redis.ping());
}

/**
 * The per-second allowance is a fixed one-second window from the bucket's first invocation. A
 * burst that took longer (a stalled, loaded machine) may have crossed into the next window and
 * proves nothing, so it is run again, on a fresh bucket (`round` tells the attempt which).
 */
export async function inOneWindow<T>(attempt: (round: number) => Promise<T>, rounds = 3): Promise<T> {
  for (let round = 0; ; round += 1) {
    const started = performance.now();
    const result = await attempt(round);
    if (performance.now() - started < 900 || round + 1 >= rounds) return result;
  }
}
