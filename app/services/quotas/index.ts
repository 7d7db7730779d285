import { count, desc, eq, sql } from "drizzle-orm";
import { LRUCache } from "lru-cache";
import type { Database } from "../../../db/client.ts";
import { apps, projectQuotas, routes } from "../../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import type { Transaction } from "../management/write-through.ts";
import type { InFlightCounter, ReleaseSlot } from "./in-flight.ts";
import {
  type QuotaLimits,
  type QuotaName,
  type QuotaOverrides,
  quotaExceededMessage,
  unlimited,
  withinLimit,
} from "./limits.ts";

export type { InFlightCounter, ReleaseSlot } from "./in-flight.ts";
export { createMemoryInFlightCounter } from "./in-flight.ts";

/** Each quota's limit and what the project uses of it (for routes: its fullest app). */
export type QuotaReport = Record<QuotaName, { limit: number; inUse: number }>;

export interface QuotaService {
  readonly defaults: QuotaLimits;
  readonly inFlight: InFlightCounter;
  /** The project's limits: what an admin set, else the configured defaults. */
  limits(projectId: string): Promise<QuotaLimits>;
  report(projectId: string): Promise<QuotaReport>;
  /** Sets the quotas given (null: back to the default) and leaves the others. */
  update(projectId: string, change: Partial<QuotaOverrides>): Promise<void>;
  /** Every quota back to its default. */
  reset(projectId: string): Promise<void>;
  /**
   * In the create's transaction, before anything is inserted or sent to the engine: locks the
   * project's quota row, so creates of one project run one at a time past this point and the
   * count cannot be overtaken; throws `quota_exceeded` when one more app is too many.
   */
  checkAppCreate(tx: Transaction, projectId: string): Promise<void>;
  /** The same for a route; the caller must already hold the app's row lock (FOR UPDATE). */
  checkRouteCreate(tx: Transaction, projectId: string, appId: string): Promise<void>;
  /**
   * A slot among the project's concurrent invocations, or 429 `concurrency_quota_exceeded`.
   * Release it exactly once when the invocation ends. Answered at once, without a promise, when
   * the project's limit is cached and the counter is in memory (most invocations).
   */
  acquireInvocation(projectId: string, routeTimeoutSeconds: number): ReleaseSlot | Promise<ReleaseSlot>;
}

export type QuotaServiceOptions = {
  defaults: QuotaLimits;
  inFlight: InFlightCounter;
  /**
   * How long invocations may use a project's cached concurrency limit (the route cache's TTL):
   * bounds how long another instance's quota change goes unseen here. 0 reads it every time.
   */
  limitCacheTtlMs: number;
  limitCacheMaxEntries?: number;
  /**
   * Added to a route's timeout to make the lease of its slot in a shared counter: longer than
   * any invocation the gateway lets run, short enough that a dead instance's slots come back.
   */
  leaseMarginMs: number;
};

/** Clients back off this long after a 429: slots free up as soon as any invocation ends. */
const retryAfterSeconds = 1;

type Reader = Database | Transaction;

export function createQuotaService(db: Database, options: QuotaServiceOptions): QuotaService {
  const { defaults, inFlight } = options;

  async function limitsWith(reader: Reader, projectId: string, lock = false): Promise<QuotaLimits> {
    const query = reader.select().from(projectQuotas).where(eq(projectQuotas.projectId, projectId));
    const [row] = lock ? await query.for("update") : await query;
    return {
      apps: row?.apps ?? defaults.apps,
      routes_per_app: row?.routesPerApp ?? defaults.routes_per_app,
      concurrent_invocations: row?.concurrentInvocations ?? defaults.concurrent_invocations,
    };
  }

  const loadConcurrencyLimit = async (projectId: string) =>
    (await limitsWith(db, projectId)).concurrent_invocations;

  // The invocation hot path reads the limit from memory; only a miss asks MySQL, once per project.
  const limitCache =
    options.limitCacheTtlMs > 0
      ? new LRUCache<string, number>({
          max: options.limitCacheMaxEntries ?? 10_000,
          ttl: options.limitCacheTtlMs,
          fetchMethod: loadConcurrencyLimit,
        })
      : null;

  async function concurrencyLimit(projectId: string): Promise<number> {
    if (!limitCache) return loadConcurrencyLimit(projectId);
    return (
      limitCache.get(projectId) ?? (await limitCache.fetch(projectId)) ?? defaults.concurrent_invocations
    );
  }

  function grantedOrRefused(release: ReleaseSlot | null, limit: number): ReleaseSlot {
    if (release) return release;
    throw new ApiError(
      "concurrency_quota_exceeded",
      quotaExceededMessage("concurrent_invocations", limit, limit),
      { headers: { "Retry-After": String(retryAfterSeconds) } },
    );
  }

  const countApps = async (reader: Reader, projectId: string) =>
    (await reader.select({ n: count() }).from(apps).where(eq(apps.projectId, projectId)))[0]?.n ?? 0;

  const refuse = (name: QuotaName, limit: number, used: number) =>
    new ApiError("quota_exceeded", quotaExceededMessage(name, limit, used));

  return {
    defaults,
    inFlight,
    limits: (projectId) => limitsWith(db, projectId),

    async report(projectId) {
      const [limits, appCount, fullestApp, invocations] = await Promise.all([
        limitsWith(db, projectId),
        countApps(db, projectId),
        db
          .select({ n: count() })
          .from(routes)
          .where(eq(routes.projectId, projectId))
          .groupBy(routes.appId)
          .orderBy(desc(count()))
          .limit(1),
        inFlight.inUse(projectId),
      ]);
      return {
        apps: { limit: limits.apps, inUse: appCount },
        routes_per_app: { limit: limits.routes_per_app, inUse: fullestApp[0]?.n ?? 0 },
        concurrent_invocations: { limit: limits.concurrent_invocations, inUse: invocations },
      };
    },

    async update(projectId, change) {
      const columns = {
        ...(change.apps !== undefined && { apps: change.apps }),
        ...(change.routes_per_app !== undefined && { routesPerApp: change.routes_per_app }),
        ...(change.concurrent_invocations !== undefined && {
          concurrentInvocations: change.concurrent_invocations,
        }),
      };
      await db
        .insert(projectQuotas)
        .values({ projectId, ...columns })
        .onDuplicateKeyUpdate({ set: { ...columns, updatedAt: sql`CURRENT_TIMESTAMP(3)` } });
      limitCache?.delete(projectId);
    },

    async reset(projectId) {
      // The row stays: it is the lock app creates of this project queue on.
      await db
        .update(projectQuotas)
        .set({
          apps: null,
          routesPerApp: null,
          concurrentInvocations: null,
          updatedAt: sql`CURRENT_TIMESTAMP(3)`,
        })
        .where(eq(projectQuotas.projectId, projectId));
      limitCache?.delete(projectId);
    },

    async checkAppCreate(tx, projectId) {
      // Creates the row if the project has none, and takes its exclusive lock either way.
      await tx
        .insert(projectQuotas)
        .values({ projectId })
        .onDuplicateKeyUpdate({ set: { projectId: sql`${projectQuotas.projectId}` } });
      const limit = (await limitsWith(tx, projectId, true)).apps;
      if (limit === unlimited) return;
      // A plain read, and still current: InnoDB takes this transaction's snapshot at its first
      // non-locking read, which is this one, after every earlier create of the project committed.
      const used = await countApps(tx, projectId);
      if (!withinLimit(limit, used)) throw refuse("apps", limit, used);
    },

    async checkRouteCreate(tx, projectId, appId) {
      const limit = (await limitsWith(tx, projectId)).routes_per_app;
      if (limit === unlimited) return;
      // Current for the same reason as apps: the caller locked the app row before any plain read.
      const [row] = await tx.select({ n: count() }).from(routes).where(eq(routes.appId, appId));
      const used = row?.n ?? 0;
      if (!withinLimit(limit, used)) throw refuse("routes_per_app", limit, used);
    },

    acquireInvocation(projectId, routeTimeoutSeconds) {
      const leaseMs = routeTimeoutSeconds * 1000 + options.leaseMarginMs;
      const cached = limitCache?.get(projectId);
      if (cached !== undefined) {
        const slot = inFlight.acquire(projectId, cached, leaseMs);
        if (!(slot instanceof Promise)) return grantedOrRefused(slot, cached);
        return slot.then((release) => grantedOrRefused(release, cached));
      }
      return (async () => {
        const limit = await concurrencyLimit(projectId);
        return grantedOrRefused(await inFlight.acquire(projectId, limit, leaseMs), limit);
      })();
    },
  };
}
