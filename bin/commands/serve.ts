import { defineCommand } from "citty";
import { createApp } from "../../app/app.ts";
import {
  engineOptions,
  functionBaseEnv,
  loadServeConfig,
  redactUri,
  type ServeConfig,
  serveOptions,
} from "../../app/config.ts";
import { createLogger, createLogSink, type Logger } from "../../app/lib/logger.ts";
import { throttledWarning } from "../../app/lib/throttled-log.ts";
import { swaggerUiAssets } from "../../app/node/assets.ts";
import { preRoutedInvocations } from "../../app/node/invocation-listener.ts";
import { keepFreedMemoryForReuse } from "../../app/node/malloc.ts";
import { listen } from "../../app/node/server.ts";
import { authenticatorFromConfig, roleNamesFromConfig } from "../../app/services/auth/from-config.ts";
import { createEngine } from "../../app/services/engine/index.ts";
import type { FunctionEngine } from "../../app/services/engine/types.ts";
import { observeDatabasePool } from "../../app/services/metrics/db-pool.ts";
import { createMetrics } from "../../app/services/metrics/index.ts";
import { createMemoryInFlightCounter, createQuotaService } from "../../app/services/quotas/index.ts";
import { createRedisInFlightCounter } from "../../app/services/quotas/redis-in-flight.ts";
import { createRateLimiter } from "../../app/services/rate-limit/index.ts";
import { connectRedis } from "../../app/services/redis/index.ts";
import { createRouteLookup } from "../../app/services/route-lookup/index.ts";
import type { AppServices } from "../../app/types.ts";
import { version } from "../../app/version.ts";
import { createDatabase } from "../../db/client.ts";
import { checkSchema } from "../../db/migrate.ts";
import { cliArgs, givenFlags } from "../args.ts";
import { exitWithError } from "../fail.ts";

export const serveArgs = cliArgs(serveOptions);

/** Where `dev` (and any other way of running the service) differs from plain `serve`. */
export type ServeHooks = {
  /** Runs before the schema check; `dev` creates and migrates its database here. */
  prepareDatabase?: (uri: string, logger: Logger) => Promise<void>;
  /** Runs once the server listens, with the port actually bound. */
  onListening?: (address: { host: string; port: number }) => void;
};

/** A shared counter's lease outlives the gateway's deadline (timeout + margin) by this much. */
const leaseExtraSeconds = 5;

/** Builds the services from `config`, listens, and stops cleanly on SIGTERM/SIGINT. */
export async function serveWith(config: ServeConfig, hooks: ServeHooks = {}): Promise<void> {
  keepFreedMemoryForReuse();
  const sink = createLogSink(config["log-file"]);
  const logger = createLogger({ level: config["log-level"], format: config["log-format"], sink });
  // A write waits for another write's row locks no longer than that one may wait for the engine.
  const database = createDatabase(config["db-uri"], { lockWaitTimeoutS: config["functions-timeout"] });

  try {
    await hooks.prepareDatabase?.(config["db-uri"], logger);
    const schema = await checkSchema(database.pool);
    if (schema.state === "missing" || schema.state === "behind") {
      throw new Error(
        `database schema is ${schema.state === "missing" ? "missing" : "older than this code"}: run \`picasso-api migrate\` first`,
      );
    }
    if (schema.state === "ahead") logger.warn("database schema is newer than this code", schema);
  } catch (caught) {
    const error =
      (caught as { code?: string }).code === "ER_BAD_DB_ERROR"
        ? new Error(
            `${(caught as Error).message}: run \`picasso-api migrate\` first (it creates the database)`,
          )
        : caught;
    await database.close().catch(() => {});
    logger.error("cannot start", { database: redactUri(config["db-uri"]), error: (error as Error).message });
    await sink.close();
    exitWithError(error);
  }

  // Built before the other services so the authenticator and the engine driver can record into it.
  const metrics = createMetrics({ processMetrics: true, version });
  observeDatabasePool(metrics, database.pool);

  let engine: FunctionEngine;
  try {
    engine = createEngine(config["functions-url"], {
      logger,
      baseEnv: functionBaseEnv(),
      ironFunctions: {
        ...engineOptions(config),
        onError: (error) => metrics.engineErrors.inc({ kind: error.kind }),
      },
    });
  } catch (error) {
    await database.close().catch(() => {});
    logger.error("cannot start", { error: (error as Error).message });
    await sink.close();
    exitWithError(error);
  }
  logger.info("function engine", { kind: engine.kind, functions_url: config["functions-url"] });

  const authenticator = authenticatorFromConfig(config, logger, metrics);
  void authenticator.warmUp?.();
  // Redis being down does not stop the start: invocations then fail open or closed as configured.
  const redisUrl = config["redis-url"];
  const redis = redisUrl ? connectRedis(redisUrl, { logger }) : undefined;
  logger.info("rate limits", {
    public: `${config["rate-limit-public"]}/s burst ${config["rate-limit-public-burst"]}`,
    private: `${config["rate-limit-private"]}/s burst ${config["rate-limit-private-burst"]}`,
    counters: redisUrl ? redactUri(redisUrl) : "in memory",
    on_redis_failure: config["rate-limit-on-redis-failure"],
  });
  const warnInFlightFailure = throttledWarning(logger, "concurrency quota not counted: Redis failed", 10_000);
  const services: AppServices = {
    db: database.db,
    logger,
    authenticator,
    roleNames: roleNamesFromConfig(config),
    engine,
    publicUrl: config["public-url"],
    routeLookup: createRouteLookup(database.db, {
      ttlMs: config["route-cache-ttl"] * 1000,
      maxEntries: 10_000,
    }),
    invocation: { maxBodyBytes: config["max-invoke-body"] },
    requestLimits: { bodyTimeoutMs: config["body-timeout"] * 1000 },
    quotas: createQuotaService(database.db, {
      defaults: {
        apps: config["quota-apps"],
        routes_per_app: config["quota-routes-per-app"],
        concurrent_invocations: config["quota-concurrent-invocations"],
      },
      // With Redis, all instances count one project's invocations together.
      inFlight: redis
        ? createRedisInFlightCounter(redis.client, {
            failOpen: config["rate-limit-on-redis-failure"] === "open",
            onError: (error) => warnInFlightFailure({ error: error.message }),
          })
        : createMemoryInFlightCounter(),
      limitCacheTtlMs: config["route-cache-ttl"] * 1000,
      leaseMarginMs: (config["invoke-timeout-margin"] + leaseExtraSeconds) * 1000,
    }),
    lifecycle: { draining: false },
    metrics,
    rateLimiter: createRateLimiter({
      defaults: {
        public: { rate: config["rate-limit-public"], burst: config["rate-limit-public-burst"] },
        private: { rate: config["rate-limit-private"], burst: config["rate-limit-private-burst"] },
      },
      trustedProxies: config["trusted-proxies"],
      redis: redis?.client,
      onRedisFailure: config["rate-limit-on-redis-failure"],
      logger,
      metrics,
    }),
    redis,
    operator: {
      metricsEndpoint: config.metrics,
      healthCacheMs: config["healthcheck-cache"] * 1000,
      healthTimeoutMs: config["healthcheck-timeout"] * 1000,
    },
    assets: swaggerUiAssets(),
  };
  const app = createApp(services);
  const running = await listen({
    fetch: app.fetch,
    preRouted: preRoutedInvocations(services),
    host: config.host,
    port: config.port,
    logger,
    lifecycle: services.lifecycle,
    limits: {
      headersTimeoutMs: config["header-timeout"] * 1000,
      keepAliveTimeoutMs: config["keepalive-timeout"] * 1000,
      maxHeaderSize: config["max-header-size"],
    },
  }).catch((error: Error) =>
    exitWithError(`cannot listen on ${config.host}:${config.port}: ${error.message}`),
  );
  logger.info("picasso-api listening", { host: config.host, port: running.port });
  hooks.onListening?.({ host: config.host, port: running.port });

  let stopping = false;
  // A second signal ends the --shutdown-delay early (an operator pressing Ctrl-C twice).
  const endDelay = new AbortController();
  const stop = async (signal: string) => {
    if (stopping) {
      endDelay.abort();
      return;
    }
    stopping = true;
    logger.info("shutting down", { signal });
    await running.shutdown(config["shutdown-timeout"] * 1000, {
      delayMs: config["shutdown-delay"] * 1000,
      endDelay: endDelay.signal,
    });
    await authenticator.close?.().catch(() => {});
    await redis?.close().catch(() => {});
    await engine
      .close()
      .catch((error: Error) => logger.warn("closing the function engine failed", { error: error.message }));
    await database
      .close()
      .catch((error: Error) => logger.warn("closing the pool failed", { error: error.message }));
    logger.info("stopped");
    await sink.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGHUP", () => sink.reopen());
}

export const serveCommand = defineCommand({
  meta: { name: "serve", description: "Start the Picasso API service (default command)" },
  args: serveArgs,
  async run({ args }) {
    let config: ServeConfig;
    try {
      config = loadServeConfig(givenFlags(serveOptions, args));
    } catch (error) {
      exitWithError(error);
    }
    await serveWith(config);
  },
});
