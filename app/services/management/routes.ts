import { randomBytes } from "node:crypto";
import { and, asc, eq, gt, sql } from "drizzle-orm";
import { type AppRow, type RouteRow, routes } from "../../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import type { AppServices } from "../../types.ts";
import { EngineError, type EngineRoute, type RouteFormat, type RouteType } from "../engine/types.ts";
import { findApp, ignoreConflict, ignoreNotFound, sameStringMap } from "./apps.ts";
import { isDuplicateKey } from "./failures.ts";
import { mergedProblems } from "./fields.ts";
import { routeLimits } from "./limits.ts";
import { type Transaction, writeThrough } from "./write-through.ts";

type Services = Pick<AppServices, "db" | "engine" | "logger">;

/** Every field of a route as tenants set it; absent fields of a create take the defaults. */
export type RouteFields = {
  image: string;
  type: RouteType;
  format: RouteFormat;
  memory: number;
  timeout: number;
  idleTimeout: number;
  maxConcurrency: number;
  headers: Record<string, string[]>;
  config: Record<string, string>;
  isPublic: boolean;
  /** Picasso's own invocation options: never sent to the engine. null = the server's `--max-invoke-body`. */
  maxBodyBytes: number | null;
  forwardAuthHeaders: boolean;
  /** Picasso's own rate limit (never sent to the engine); null = the server's default. */
  rateLimit: number | null;
  rateLimitBurst: number | null;
  description: string;
};

export type RouteInput = { path: string; image: string } & Partial<Omit<RouteFields, "image">>;

/** PUT replaces the fields given; PATCH merges `config` and `headers` (null deletes a key). */
export type RouteChange = Partial<RouteFields> & {
  configPatch?: Record<string, string | null>;
  headersPatch?: Record<string, string[] | null>;
};

export const routeDefaults = {
  type: "sync",
  format: "default",
  memory: routeLimits.memory.default,
  timeout: routeLimits.timeout.default,
  idleTimeout: routeLimits.idleTimeout.default,
  maxConcurrency: routeLimits.maxConcurrency.default,
  isPublic: false,
  maxBodyBytes: null,
  forwardAuthHeaders: false,
  rateLimit: null,
  rateLimitBurst: null,
  description: "",
} as const satisfies Partial<RouteFields>;

export function engineRoute(
  row: Pick<RouteRow, "path"> &
    Omit<
      RouteFields,
      "isPublic" | "description" | "maxBodyBytes" | "forwardAuthHeaders" | "rateLimit" | "rateLimitBurst"
    >,
): EngineRoute {
  return {
    path: row.path,
    image: row.image,
    type: row.type,
    format: row.format,
    memory: row.memory,
    timeout: row.timeout,
    idleTimeout: row.idleTimeout,
    maxConcurrency: row.maxConcurrency,
    headers: row.headers,
    config: row.config,
  };
}

const notFound = (app: string, path: string) =>
  new ApiError("not_found", `Route ${path} not found in app ${app}`);

export async function listRoutes(
  services: Pick<Services, "db">,
  projectId: string,
  appName: string,
  page: { limit: number; marker?: string },
): Promise<{ app: AppRow; routes: RouteRow[]; nextMarker: string | null }> {
  const app = await findApp(services.db, projectId, appName);
  const where = page.marker
    ? and(eq(routes.appId, app.id), gt(routes.path, page.marker))
    : eq(routes.appId, app.id);
  const rows = await services.db
    .select()
    .from(routes)
    .where(where)
    .orderBy(asc(routes.path))
    .limit(page.limit + 1);
  const more = rows.length > page.limit;
  const shown = more ? rows.slice(0, page.limit) : rows;
  return { app, routes: shown, nextMarker: more ? (shown.at(-1)?.path ?? null) : null };
}

async function findRoute(
  db: Services["db"] | Transaction,
  app: AppRow,
  path: string,
  options: { lock?: boolean } = {},
): Promise<RouteRow> {
  const query = db
    .select()
    .from(routes)
    .where(and(eq(routes.appId, app.id), eq(routes.path, path)));
  const [row] = options.lock ? await query.for("update") : await query;
  if (!row) throw notFound(app.name, path);
  return row;
}

export async function getRoute(
  services: Pick<Services, "db">,
  projectId: string,
  appName: string,
  path: string,
): Promise<{ app: AppRow; route: RouteRow }> {
  const app = await findApp(services.db, projectId, appName);
  return { app, route: await findRoute(services.db, app, path) };
}

export async function createRoute(
  services: Services & Pick<AppServices, "quotas">,
  projectId: string,
  appName: string,
  input: RouteInput,
): Promise<{ app: AppRow; route: RouteRow }> {
  try {
    return await writeThrough(services, async ({ tx, engine }) => {
      // The app row stays locked until commit: a concurrent delete of the app waits for this route.
      const app = await findApp(tx, projectId, appName, { lock: true });
      await services.quotas.checkRouteCreate(tx, projectId, app.id);
      const id = randomBytes(16).toString("hex");
      const { path, ...given } = input;
      const fields: RouteFields = {
        ...routeDefaults,
        headers: {},
        config: {},
        ...stripUndefined(given),
        image: given.image,
      };
      await tx.insert(routes).values({ id, appId: app.id, projectId, path, ...fields });
      const wanted = engineRoute({ path, ...fields });
      await engine(
        app.engineName,
        () => createOrReplace(services, app.engineName, wanted),
        () => services.engine.deleteRoute(app.engineName, wanted.path).catch(ignoreNotFound),
      );
      return { app, route: await findRoute(tx, app, path) };
    });
  } catch (error) {
    if (isDuplicateKey(error)) {
      throw new ApiError("conflict", `Route ${input.path} already exists in app ${appName}`);
    }
    throw error;
  }
}

/**
 * MySQL has no such route (its unique key is held by this transaction), so a route the engine
 * already has is a leftover of an earlier failure: MySQL wins and the leftover is replaced.
 */
async function createOrReplace(services: Services, engineApp: string, route: EngineRoute): Promise<void> {
  try {
    await services.engine.createRoute(engineApp, route);
  } catch (error) {
    if (!(error instanceof EngineError && error.kind === "conflict")) throw error;
    services.logger.warn("replacing a route the engine had but MySQL did not", {
      app: engineApp,
      path: route.path,
    });
    await services.engine.deleteRoute(engineApp, route.path).catch(ignoreNotFound);
    await services.engine.createRoute(engineApp, route);
  }
}

/** A route the engine lost (drift) is created again as MySQL has it: MySQL wins. */
async function updateOrRecreate(
  services: Services,
  engineApp: string,
  next: EngineRoute,
  previous: EngineRoute,
): Promise<void> {
  try {
    await services.engine.updateRoute(engineApp, next, previous);
  } catch (error) {
    if (!(error instanceof EngineError && error.kind === "not_found")) throw error;
    services.logger.warn("recreating a route MySQL has but the engine lost", {
      app: engineApp,
      path: next.path,
    });
    await services.engine.createRoute(engineApp, next);
  }
}

export async function updateRoute(
  services: Services,
  projectId: string,
  appName: string,
  path: string,
  change: RouteChange,
): Promise<{ app: AppRow; route: RouteRow }> {
  return writeThrough(services, async ({ tx, engine }) => {
    const app = await findApp(tx, projectId, appName, { lock: true });
    const current = await findRoute(tx, app, path, { lock: true });
    const { configPatch, headersPatch, ...replaced } = change;
    const next: RouteFields = { ...pickFields(current), ...stripUndefined(replaced) };
    if (configPatch) next.config = mergeMap(next.config, configPatch);
    if (headersPatch) next.headers = mergeMap(next.headers, headersPatch);
    const problem = mergedProblems(next.config, next.headers);
    if (problem) throw new ApiError("validation_failed", `Invalid json: ${problem}`);
    const before = engineRoute(current);
    const after = engineRoute({ path: current.path, ...next });
    const engineChanged = !sameEngineRoute(before, after);
    const picassoChanged =
      next.isPublic !== current.isPublic ||
      next.description !== current.description ||
      next.maxBodyBytes !== current.maxBodyBytes ||
      next.forwardAuthHeaders !== current.forwardAuthHeaders ||
      next.rateLimit !== current.rateLimit ||
      next.rateLimitBurst !== current.rateLimitBurst;
    if (!engineChanged && !picassoChanged) {
      return { app, route: current };
    }
    await tx
      .update(routes)
      .set({ ...next, updatedAt: sql`CURRENT_TIMESTAMP(3)` })
      .where(eq(routes.id, current.id));
    if (engineChanged) {
      await engine(
        app.engineName,
        () => updateOrRecreate(services, app.engineName, after, before),
        () => services.engine.updateRoute(app.engineName, before, after),
      );
    }
    return { app, route: await findRoute(tx, app, path) };
  });
}

export async function deleteRoute(
  services: Services,
  projectId: string,
  appName: string,
  path: string,
): Promise<void> {
  await writeThrough(services, async ({ tx, engine }) => {
    const app = await findApp(tx, projectId, appName, { lock: true });
    const current = await findRoute(tx, app, path, { lock: true });
    await tx.delete(routes).where(eq(routes.id, current.id));
    await engine(
      app.engineName,
      () => services.engine.deleteRoute(app.engineName, current.path).catch(ignoreNotFound),
      () => services.engine.createRoute(app.engineName, engineRoute(current)).catch(ignoreConflict),
    );
  });
}

function pickFields(row: RouteRow): RouteFields {
  return {
    image: row.image,
    type: row.type,
    format: row.format,
    memory: row.memory,
    timeout: row.timeout,
    idleTimeout: row.idleTimeout,
    maxConcurrency: row.maxConcurrency,
    headers: row.headers,
    config: row.config,
    isPublic: row.isPublic,
    maxBodyBytes: row.maxBodyBytes,
    forwardAuthHeaders: row.forwardAuthHeaders,
    rateLimit: row.rateLimit,
    rateLimitBurst: row.rateLimitBurst,
    description: row.description,
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function mergeMap<V>(base: Record<string, V>, patch: Record<string, V | null>): Record<string, V> {
  const merged = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

export function sameEngineRoute(a: EngineRoute, b: EngineRoute): boolean {
  return (
    a.path === b.path &&
    a.image === b.image &&
    a.type === b.type &&
    a.format === b.format &&
    a.memory === b.memory &&
    a.timeout === b.timeout &&
    a.idleTimeout === b.idleTimeout &&
    a.maxConcurrency === b.maxConcurrency &&
    sameStringMap(a.config, b.config) &&
    sameHeaders(a.headers, b.headers)
  );
}

export function sameHeaders(a: Record<string, string[]>, b: Record<string, string[]>): boolean {
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length &&
    keys.every((key) => {
      const x = a[key];
      const y = b[key];
      return x !== undefined && y !== undefined && x.length === y.length && x.every((v, i) => v === y[i]);
    })
  );
}
