/**
 * Prometheus metrics, one registry per app: prom-client's global default registry is never used,
 * so two apps in one process (tests, embedders) count separately. Code that records something
 * gets the typed `Metrics` object from the service bag (`c.get("services").metrics`), whose label
 * values are closed unions: a label never carries a path, token, name or other unbounded value.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { EngineErrorKind } from "../engine/types.ts";
import { BatchedCounter, BatchedTimedEvents, type TimedEvents } from "./batched.ts";

export const engineErrorKinds = [
  "unavailable",
  "timeout",
  "failed",
  "rejected",
  "invalid",
  "not_found",
  "conflict",
] as const satisfies readonly EngineErrorKind[];

/**
 * How an invocation ended, as the gateway saw it:
 * `success` the function answered below 500; `function_error` it answered 500 or more;
 * `engine_error` the engine failed before the function answered (see picasso_engine_errors_total);
 * `timeout` the gateway's deadline passed; `cancelled` the client went away first.
 */
export const invocationOutcomes = [
  "success",
  "function_error",
  "engine_error",
  "timeout",
  "cancelled",
] as const;
export type InvocationOutcome = (typeof invocationOutcomes)[number];

/**
 * One request from Picasso to Keystone: `success` Keystone answered as hoped (token valid);
 * `rejected` it answered that the token is invalid, expired or revoked (401/403/404);
 * `error` anything else (5xx, unreachable, unparseable); `timeout` no answer in time.
 */
export const keystoneOutcomes = ["success", "rejected", "error", "timeout"] as const;
export type KeystoneOutcome = (typeof keystoneOutcomes)[number];

export const tokenCacheResults = ["hit", "miss"] as const;
export type TokenCacheResult = (typeof tokenCacheResults)[number];

/** Whose bucket an invocation counts in: a client address (public) or a project (private). */
export const rateLimitKinds = ["public", "private"] as const;
export type RateLimitKind = (typeof rateLimitKinds)[number];

/** What became of an invocation whose rate limit could not be checked (Redis failed): `--rate-limit-on-redis-failure`. */
export const rateLimitFailureResults = ["allowed", "refused"] as const;
export type RateLimitFailureResult = (typeof rateLimitFailureResults)[number];

export const statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"] as const;
export type StatusClass = (typeof statusClasses)[number];

export type HttpLabels = { method: string; route: string; status_class: StatusClass };

/** The part of prom-client's Counter callers use, with label values typed. */
export interface LabelledCounter<Labels extends Record<string, string>> {
  inc(labels: Labels, value?: number): void;
}

export type Metrics = {
  /** What GET /metrics serves; register collectors of your own here, never on the global registry. */
  registry: Registry;
  /**
   * picasso_http_requests_total and picasso_http_request_duration_seconds (until the response
   * headers are ready); recorded by the metrics middleware for every request.
   */
  httpRequests: TimedEvents<HttpLabels>;
  /**
   * picasso_invocations_total and picasso_invocation_duration_seconds (until the function's
   * response headers arrived): one per function invocation, recorded by the invocation code.
   */
  invocations: TimedEvents<{ outcome: InvocationOutcome }>;
  /** picasso_engine_errors_total: every EngineError an engine driver raises, by kind. */
  engineErrors: LabelledCounter<{ kind: EngineErrorKind }>;
  /** picasso_keystone_requests_total: every HTTP request to Keystone, by outcome. */
  keystoneRequests: LabelledCounter<{ outcome: KeystoneOutcome }>;
  /** picasso_token_cache_total: token validations answered from the cache (hit) or not (miss). */
  tokenCache: LabelledCounter<{ result: TokenCacheResult }>;
  /** picasso_rate_limited_total: invocations refused with 429 by the rate limit, by kind. */
  rateLimited: LabelledCounter<{ kind: RateLimitKind }>;
  /** picasso_rate_limit_redis_failures_total: invocations whose limit Redis could not check. */
  rateLimitRedisFailures: LabelledCounter<{ result: RateLimitFailureResult }>;
};

export type MetricsOptions = {
  /** Node.js process metrics (CPU, memory, event loop lag, GC): for the server, not for tests. */
  processMetrics?: boolean;
  /** Reported as picasso_build_info{version}. */
  version?: string;
};

const httpBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// Functions run for up to minutes; the engine's own timeout defaults to 30 s.
const invocationBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];

  // Recorded on every request: batched (batched.ts), handed over before each scrape.
  const flushEvents = () => {
    httpRequests.flush();
    invocations.flush();
    tokenCache.flush();
  };
  const httpLabelNames = ["method", "route", "status_class"] as const;
  const httpRequests = new BatchedTimedEvents<HttpLabels>(
    new Counter({
      name: "picasso_http_requests_total",
      help: "HTTP requests answered, by method, route template and status class.",
      labelNames: httpLabelNames,
      registers,
      collect: flushEvents,
    }),
    new Histogram({
      name: "picasso_http_request_duration_seconds",
      help: "Time from receiving an HTTP request to its response headers, by method, route template and status class.",
      labelNames: httpLabelNames,
      buckets: httpBuckets,
      registers,
      collect: flushEvents,
    }),
    httpLabelNames,
  );
  const invocationCounter = new Counter({
    name: "picasso_invocations_total",
    help: "Function invocations, by outcome.",
    labelNames: ["outcome"] as const,
    registers,
    collect: flushEvents,
  });
  const invocations = new BatchedTimedEvents<{ outcome: InvocationOutcome }>(
    invocationCounter,
    new Histogram({
      name: "picasso_invocation_duration_seconds",
      help: "Time from an invocation request to the function's response headers, by outcome.",
      labelNames: ["outcome"] as const,
      buckets: invocationBuckets,
      registers,
      collect: flushEvents,
    }),
    ["outcome"],
  );
  const engineErrors = new Counter({
    name: "picasso_engine_errors_total",
    help: "Errors from the function engine, by kind.",
    labelNames: ["kind"] as const,
    registers,
  });
  const keystoneRequests = new Counter({
    name: "picasso_keystone_requests_total",
    help: "Requests to Keystone, by outcome.",
    labelNames: ["outcome"] as const,
    registers,
  });
  const tokenCacheCounter = new Counter({
    name: "picasso_token_cache_total",
    help: "Token validations answered from the token cache (hit) or sent to Keystone (miss).",
    labelNames: ["result"] as const,
    registers,
    collect: flushEvents,
  });
  const tokenCache = new BatchedCounter<{ result: TokenCacheResult }>(tokenCacheCounter, ["result"]);
  const rateLimited = new Counter({
    name: "picasso_rate_limited_total",
    help: "Invocations refused with 429 by the rate limit, by kind (public: per client address, private: per project).",
    labelNames: ["kind"] as const,
    registers,
  });
  const rateLimitRedisFailures = new Counter({
    name: "picasso_rate_limit_redis_failures_total",
    help: "Invocations whose rate limit Redis could not check, by what became of them (allowed: fail open, refused: fail closed).",
    labelNames: ["result"] as const,
    registers,
  });

  // Series of closed label sets exist from the start at 0, so rate() and alerts on them work
  // before the first event instead of seeing "no data".
  for (const outcome of invocationOutcomes) invocationCounter.inc({ outcome }, 0);
  for (const kind of engineErrorKinds) engineErrors.inc({ kind }, 0);
  for (const outcome of keystoneOutcomes) keystoneRequests.inc({ outcome }, 0);
  for (const result of tokenCacheResults) tokenCacheCounter.inc({ result }, 0);
  for (const kind of rateLimitKinds) rateLimited.inc({ kind }, 0);
  for (const result of rateLimitFailureResults) rateLimitRedisFailures.inc({ result }, 0);

  if (options.version) {
    const buildInfo = new Gauge({
      name: "picasso_build_info",
      help: "Always 1; the version label says which Picasso is running.",
      labelNames: ["version"] as const,
      registers,
    });
    buildInfo.set({ version: options.version }, 1);
  }
  if (options.processMetrics) collectDefaultMetrics({ register: registry });

  return {
    registry,
    httpRequests,
    invocations,
    engineErrors,
    keystoneRequests,
    tokenCache,
    rateLimited,
    rateLimitRedisFailures,
  };
}

export function statusClass(status: number): StatusClass {
  const hundreds = Math.floor(status / 100);
  return statusClasses[Math.min(Math.max(hundreds, 1), 5) - 1] as StatusClass;
}
