/**
 * The one Redis connection of a Picasso process (`--redis-url`), shared by whatever keeps state
 * across instances (the rate limit counters). Built once by `serve` and injected as a service.
 */
import { Redis } from "ioredis";
import type { Logger } from "../../lib/logger.ts";
import { throttledWarning } from "../../lib/throttled-log.ts";

export type RedisConnection = {
  client: Redis;
  /** Readiness: resolves when Redis answers PING; rejects with the reason (the last connect error) otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
};

export type RedisConnectionOptions = {
  logger: Logger;
  /** Giving up on one connection attempt (default 2000); reconnects keep going in the background. */
  connectTimeoutMs?: number;
  /** Giving up on one command, e.g. on a Redis that accepts connections but hangs (default 1000). */
  commandTimeoutMs?: number;
};

/** Reconnect attempts back off to this, so Redis coming back is noticed within a second. */
const maxReconnectDelayMs = 1000;

export function connectRedis(url: string, options: RedisConnectionOptions): RedisConnection {
  const { logger } = options;
  let lastError: Error | undefined;
  let failing = false;
  const client = new Redis(url, {
    // A dead Redis must fail commands at once, not queue them behind the invocations that wait.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    retryStrategy: (attempt) => Math.min(attempt * 100, maxReconnectDelayMs),
  });
  const warnFailure = throttledWarning(logger, "redis connection failed", 30_000);
  client.on("error", (error: Error) => {
    lastError = error;
    failing = true;
    warnFailure({ error: error.message });
  });
  client.on("ready", () => {
    lastError = undefined;
    if (failing) logger.info("redis connection restored");
    failing = false;
  });
  return {
    client,
    async ping() {
      if (client.status !== "ready") {
        const reason = lastError?.message ?? `connection ${client.status}`;
        throw Object.assign(new Error(`Redis is not connected: ${reason}`), {
          code: (lastError as { code?: unknown } | undefined)?.code,
        });
      }
      await client.ping();
    },
    async close() {
      if (client.status === "ready") await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    },
  };
}
