import type { Database } from "../db/client.ts";
import type { Logger } from "./lib/logger.ts";
import type { Authenticator, RoleNames } from "./services/auth/types.ts";
import type { FunctionEngine } from "./services/engine/types.ts";
import type { Metrics } from "./services/metrics/index.ts";
import type { QuotaService } from "./services/quotas/index.ts";
import type { RateLimiter } from "./services/rate-limit/index.ts";
import type { RedisConnection } from "./services/redis/index.ts";
import type { RouteLookup } from "./services/route-lookup/index.ts";

/** Who a validated Keystone token belongs to; set by the auth middleware, read by handlers. */
export type Identity = {
  userId: string;
  /** null for domain-scoped or unscoped tokens: they can act on no project. */
  projectId: string | null;
  roles: readonly string[];
  expiresAt: Date;
};

/** Serves files the API explorer needs; supplied by the runtime (Node reads them from disk). */
export type AssetSource = (name: string) => Promise<{ body: Uint8Array; contentType: string } | null>;

/** Process state that outlives a request: lets health checks report draining during shutdown. */
export type Lifecycle = { draining: boolean };

/** Settings of the operator endpoints (/healthcheck, /metrics); absent fields take defaults. */
export type OperatorOptions = {
  /** Serve `GET /metrics` (default true); metrics are recorded either way. */
  metricsEndpoint?: boolean;
  /** How long a detailed health report is reused (default 5000). */
  healthCacheMs?: number;
  /** A dependency that has not answered a health check within this long has failed (default 3000). */
  healthTimeoutMs?: number;
};

/**
 * Everything the app needs, built once by the caller of createApp and passed in: the app keeps
 * no module-level state, so tests build as many independent apps as they like.
 */
export interface AppServices {
  db: Database;
  logger: Logger;
  authenticator: Authenticator;
  roleNames: RoleNames;
  engine: FunctionEngine;
  routeLookup: RouteLookup;
  invocation: InvocationSettings;
  /** Per-project quotas: count checks on create, concurrent invocations on the invoke path. */
  quotas: QuotaService;
  lifecycle: Lifecycle;
  /** Prometheus metrics of this app (its own registry); see app/services/metrics. */
  metrics: Metrics;
  operator?: OperatorOptions;
  /** Limits on how clients send requests; absent fields take defaults. */
  requestLimits?: RequestLimits;
  assets?: AssetSource;
  /** Public base URL of this API if it sits behind a proxy; else derived from each request. */
  publicUrl?: string;
  /** Counts every invocation against its route's rate limit (app/services/rate-limit). */
  rateLimiter: RateLimiter;
  /** `--redis-url`: the shared Redis connection, reported by the detailed health check. */
  redis?: RedisConnection;
}

export type RequestLimits = {
  /**
   * How long a client may send nothing while Picasso waits for more of its request body (default
   * 60000). Only inactivity counts: a long upload that keeps moving is never cut.
   */
  bodyTimeoutMs?: number;
};

export type InvocationSettings = {
  /** Largest request body forwarded to a function. */
  maxBodyBytes: number;
};

export type AppEnv = {
  Variables: {
    services: AppServices;
    requestId: string;
    log: Logger;
    identity?: Identity;
  };
};
