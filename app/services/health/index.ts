/**
 * Readiness of Picasso's dependencies for `GET /healthcheck?detailed=1`. Results are reused for a
 * few seconds and concurrent probes share one round of checks, so however many load balancers and
 * monitors poll, MySQL, Keystone and the engine see at most one check per interval.
 */
import { sql } from "drizzle-orm";
import { ApiError } from "../../lib/errors.ts";
import { withoutCredentials } from "../../lib/redact.ts";
import type { AppServices } from "../../types.ts";
import { EngineError } from "../engine/types.ts";

export const dependencyNames = ["database", "keystone", "engine"] as const;
export type DependencyName = (typeof dependencyNames)[number];
/** Reported only where configured: Redis (`--redis-url`). */
export const optionalDependencyNames = ["redis"] as const;
export type OptionalDependencyName = (typeof optionalDependencyNames)[number];

export type DependencyCheck = {
  /** `skipped`: nothing to check (noauth, or the dependency cannot be probed). */
  status: "ok" | "error" | "skipped";
  /** Whether this dependency failing makes the whole service unavailable (503). */
  critical: boolean;
  latency_ms?: number;
  /** Short machine-readable reason: `timeout`, an EngineError kind, a MySQL or socket code. */
  error?: string;
  /** Human-readable reason, with any credentials in URLs removed. */
  message?: string;
};

export type ReadinessReport = {
  /** `unavailable` when a critical dependency fails; `degraded` when only others do. */
  status: "ok" | "degraded" | "unavailable";
  checked_at: string;
  checks: Record<DependencyName, DependencyCheck> & Partial<Record<OptionalDependencyName, DependencyCheck>>;
};

export type ReadinessOptions = {
  /** How long a report is reused; 0 checks on every probe (still one round for concurrent probes). */
  cacheMs: number;
  /** Each dependency counts as failed when it has not answered within this long. */
  timeoutMs: number;
};

export type ReadinessProbe = { check(): Promise<ReadinessReport> };

type Services = Pick<AppServices, "db" | "authenticator" | "engine" | "redis">;

/**
 * Only MySQL is critical: without it Picasso can neither manage nor invoke anything. Keystone and
 * the engine are shared by every Picasso instance, so failing readiness for them would take all
 * instances out of the load balancer and turn a partial outage (public invocations and cached
 * tokens still work without Keystone; reads work without the engine) into a total one. Redis is
 * shared too, and only rate limiting needs it (which fails open or closed by configuration).
 */
const critical: Record<DependencyName | OptionalDependencyName, boolean> = {
  database: true,
  keystone: false,
  engine: false,
  redis: false,
};

export function createReadinessProbe(services: Services, options: ReadinessOptions): ReadinessProbe {
  let cached: { at: number; report: ReadinessReport } | undefined;
  let running: Promise<ReadinessReport> | undefined;

  const checkers: Record<DependencyName, Checker> & Partial<Record<OptionalDependencyName, Checker>> = {
    database: async () => {
      await services.db.execute(sql`SELECT 1`);
    },
    keystone:
      services.authenticator.kind === "noauth"
        ? "authentication is disabled (noauth)"
        : services.authenticator.ping
          ? (signal) => services.authenticator.ping?.(signal) ?? Promise.resolve()
          : "the authenticator cannot be probed",
    engine:
      typeof services.engine?.ping === "function"
        ? (signal) => services.engine.ping(signal)
        : "no function engine is configured",
  };
  const { redis } = services;
  if (redis) checkers.redis = () => redis.ping();
  const names = [...dependencyNames, ...optionalDependencyNames.filter((name) => checkers[name])];

  async function runChecks(): Promise<ReadinessReport> {
    const entries = await Promise.all(
      names.map(async (name) => {
        const checker = checkers[name] ?? "not configured";
        const result: DependencyCheck =
          typeof checker === "string"
            ? { status: "skipped", critical: critical[name], message: checker }
            : await timed(checker, options.timeoutMs, critical[name]);
        return [name, result] as const;
      }),
    );
    const checks = Object.fromEntries(entries) as ReadinessReport["checks"];
    const failing = Object.values(checks).filter((check) => check.status === "error");
    const status = failing.some((check) => check.critical)
      ? "unavailable"
      : failing.length > 0
        ? "degraded"
        : "ok";
    return { status, checked_at: new Date().toISOString(), checks };
  }

  return {
    check() {
      if (cached && performance.now() - cached.at < options.cacheMs) return Promise.resolve(cached.report);
      running ??= runChecks()
        .then((report) => {
          cached = { at: performance.now(), report };
          return report;
        })
        .finally(() => {
          running = undefined;
        });
      return running;
    },
  };
}

type Checker = ((signal: AbortSignal) => Promise<void>) | string;

class CheckTimeout extends Error {}

async function timed(
  check: (signal: AbortSignal) => Promise<void>,
  timeoutMs: number,
  isCritical: boolean,
): Promise<DependencyCheck> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  // Checks that ignore the signal (a query queued in the pool) still end the wait on time.
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new CheckTimeout(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const started = performance.now();
  try {
    await Promise.race([check(controller.signal), deadline]);
    return { status: "ok", critical: isCritical, latency_ms: elapsed(started) };
  } catch (error) {
    return { status: "error", critical: isCritical, latency_ms: elapsed(started), ...describeFailure(error) };
  } finally {
    clearTimeout(timer);
  }
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 10) / 10;

const machineCode = /^[A-Z][A-Z0-9_]{1,63}$/;

export function describeFailure(caught: unknown): { error: string; message: string } {
  if (caught instanceof CheckTimeout) return { error: "timeout", message: caught.message };
  if (caught instanceof EngineError) return { error: caught.kind, message: clean(caught.message) };
  if (caught instanceof ApiError) return { error: caught.code, message: clean(caught.message) };
  // drizzle wraps the driver's error ("Failed query: ..."); the driver's says what went wrong.
  const error = caught instanceof Error && caught.cause instanceof Error ? caught.cause : caught;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const reason = typeof code === "string" && machineCode.test(code) ? code : "error";
  // mysql2 reports a refused connection to every address of a host as an AggregateError with no message.
  return { error: reason, message: clean(message || reason) };
}

const clean = (message: string) => withoutCredentials(message).slice(0, 300);
