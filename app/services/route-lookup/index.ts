import { and, eq } from "drizzle-orm";
import { LRUCache } from "lru-cache";
import type { Database } from "../../../db/client.ts";
import { apps, routes } from "../../../db/schema.ts";
import type { EngineRoute } from "../engine/types.ts";
import { engineRoute } from "../management/routes.ts";

/** Everything an invocation needs, resolved from the tenant's app name and route path. */
export type InvokeTarget = {
  projectId: string;
  appName: string;
  engineApp: string;
  appConfig: Record<string, string>;
  isPublic: boolean;
  /** null: the server's `--max-invoke-body`. */
  maxBodyBytes: number | null;
  forwardAuthHeaders: boolean;
  /** The route's id: rate limit buckets are per route. */
  routeId: string;
  /** Invocations per second per caller; null: the server's default for public or private invocations. */
  rateLimit: number | null;
  /** Invocations allowed at once above `rateLimit`; null: the server's default. */
  rateLimitBurst: number | null;
  route: EngineRoute;
};

export interface RouteLookup {
  /** null when the app or the route does not exist. */
  find(appName: string, path: string): Promise<InvokeTarget | null>;
  /**
   * The cached answer without waiting (`undefined` when there is none yet): the hot path skips a
   * promise per invocation, and calls `find` only on a miss.
   */
  cached(appName: string, path: string): InvokeTarget | null | undefined;
  /** Called after this instance changes an app or its routes, so it serves the change at once. */
  invalidateApp(appName: string): void;
}

export type RouteLookupOptions = {
  /** Bounds how long another instance's write can go unseen here; 0 disables the cache. */
  ttlMs: number;
  maxEntries: number;
};

type Cached = { target: InvokeTarget | null };

const separator = "\u0000";

/**
 * Invocations are the hot path: the (app, path) -> engine mapping is cached in memory, and
 * concurrent misses for one key share a single query.
 */
export function createRouteLookup(db: Database, options: RouteLookupOptions): RouteLookup {
  const load = (appName: string, path: string) => queryTarget(db, appName, path);
  if (options.ttlMs <= 0) {
    return {
      find: async (appName, path) => (couldBeStored(appName, path) ? load(appName, path) : null),
      cached: () => undefined,
      invalidateApp() {},
    };
  }
  const cache = new LRUCache<string, Cached>({
    max: options.maxEntries,
    ttl: options.ttlMs,
    fetchMethod: async (key) => {
      const cut = key.indexOf(separator);
      return { target: await load(key.slice(0, cut), key.slice(cut + 1)) };
    },
  });
  return {
    async find(appName, path) {
      if (!couldBeStored(appName, path)) return null;
      const cached = await cache.fetch(`${appName}${separator}${path}`);
      return cached?.target ?? null;
    },
    cached(appName, path) {
      return cache.get(`${appName}${separator}${path}`)?.target;
    },
    invalidateApp(appName) {
      const prefix = `${appName}${separator}`;
      for (const key of cache.keys()) if (key.startsWith(prefix)) cache.delete(key);
    },
  };
}

/**
 * Stored names and paths are printable ASCII (the name and path rules), in ASCII columns: MySQL
 * refuses to compare those with other characters ("Illegal mix of collations"), so a URL holding
 * any can name no route and must not reach the query. It also keeps the separator out of keys.
 */
function couldBeStored(appName: string, path: string): boolean {
  return printableAscii.test(appName) && printableAscii.test(path);
}
const printableAscii = /^[\x21-\x7e]+$/;

async function queryTarget(db: Database, appName: string, path: string): Promise<InvokeTarget | null> {
  const rows = await db
    .select({
      projectId: apps.projectId,
      appName: apps.name,
      engineApp: apps.engineName,
      appConfig: apps.config,
      route: routes,
    })
    .from(routes)
    .innerJoin(apps, eq(routes.appId, apps.id))
    .where(and(eq(apps.name, appName), eq(routes.path, path)))
    .limit(1);
  const row = rows[0];
  if (!row) return null;
  const { route } = row;
  return {
    projectId: row.projectId,
    appName: row.appName,
    engineApp: row.engineApp,
    appConfig: row.appConfig,
    isPublic: route.isPublic,
    maxBodyBytes: route.maxBodyBytes,
    forwardAuthHeaders: route.forwardAuthHeaders,
    routeId: route.id,
    rateLimit: route.rateLimit,
    rateLimitBurst: route.rateLimitBurst,
    route: engineRoute(route),
  };
}
