import { createApp } from "../../app/app.ts";
import { ApiError } from "../../app/lib/errors.ts";
import { silentLogger } from "../../app/lib/logger.ts";
import { type Authenticator, defaultRoleNames } from "../../app/services/auth/types.ts";
import { EngineError, type FunctionEngine } from "../../app/services/engine/types.ts";
import { createMetrics } from "../../app/services/metrics/index.ts";
import {
  createMemoryInFlightCounter,
  createQuotaService,
  type QuotaServiceOptions,
} from "../../app/services/quotas/index.ts";
import { createRateLimiter, type RateLimiterOptions } from "../../app/services/rate-limit/index.ts";
import { createRouteLookup } from "../../app/services/route-lookup/index.ts";
import type { AppServices } from "../../app/types.ts";
import type { DatabaseHandle } from "../../db/client.ts";

/** For tests that must not reach an engine: every call fails as if it were down. */
export const unreachableEngine: FunctionEngine = new Proxy({ kind: "unreachable" } as FunctionEngine, {
  get(target, property) {
    if (property === "kind") return target.kind;
    if (property === "then") return undefined;
    return async () => {
      throw new EngineError("unavailable", "no function engine in this test");
    };
  },
});

/** For tests that must not authenticate anyone. */
export const rejectingAuthenticator: Authenticator = {
  kind: "keystone",
  async authenticate() {
    throw new ApiError("unauthorized", "no authenticator in this test");
  },
};

/** The production defaults (100 of everything), counted in memory, no limit cache: tests see changes at once. */
export function testQuotas(database: DatabaseHandle, options: Partial<QuotaServiceOptions> = {}) {
  return createQuotaService(database.db, {
    defaults: { apps: 100, routes_per_app: 100, concurrent_invocations: 100 },
    inFlight: createMemoryInFlightCounter(),
    limitCacheTtlMs: 0,
    leaseMarginMs: 5_000,
    ...options,
  });
}

/** Server defaults of 0: only routes with their own `rate_limit` are limited, unless a test says otherwise. */
export const noDefaultRateLimits: RateLimiterOptions["defaults"] = {
  public: { rate: 0, burst: 0 },
  private: { rate: 0, burst: 0 },
};

/** An app over the test database with quiet logs; override any service per test. */
export function testApp(database: DatabaseHandle, overrides: Partial<AppServices> = {}) {
  const metrics = overrides.metrics ?? createMetrics();
  const services: AppServices = {
    db: database.db,
    logger: silentLogger,
    lifecycle: { draining: false },
    authenticator: rejectingAuthenticator,
    roleNames: defaultRoleNames,
    engine: unreachableEngine,
    routeLookup: createRouteLookup(database.db, { ttlMs: 0, maxEntries: 100 }),
    invocation: { maxBodyBytes: 32 * 1024 * 1024 },
    quotas: testQuotas(database),
    metrics,
    rateLimiter: createRateLimiter({ defaults: noDefaultRateLimits, logger: silentLogger, metrics }),
    ...overrides,
  };
  return { app: createApp(services), services };
}
