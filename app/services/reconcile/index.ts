import { asc, eq } from "drizzle-orm";
import type { Database } from "../../../db/client.ts";
import { type AppRow, apps, type RouteRow, routes } from "../../../db/schema.ts";
import type { Logger } from "../../lib/logger.ts";
import type { EngineApp, EngineRoute, FunctionEngine } from "../engine/types.ts";
import { engineNamePattern, ignoreConflict, ignoreNotFound, sameStringMap } from "../management/apps.ts";
import { engineRoute, sameHeaders } from "../management/routes.ts";
import type { Transaction } from "../management/write-through.ts";

/** One difference between MySQL (the truth) and the engine. */
export type Drift =
  | { kind: "missing-app"; app: string; engineApp: string }
  | { kind: "extra-app"; engineApp: string; createdByPicasso: boolean }
  | { kind: "app-differs"; app: string; engineApp: string; fields: string[] }
  | { kind: "missing-route"; app: string; engineApp: string; path: string }
  | { kind: "extra-route"; app: string; engineApp: string; path: string }
  | { kind: "route-differs"; app: string; engineApp: string; path: string; fields: string[] };

export type FixOutcome = {
  drift: Drift;
  result: "fixed" | "left-alone" | "changed-meanwhile" | "failed";
  error?: string;
};

type Sources = { db: Database; engine: FunctionEngine; logger: Logger };

/** Field names as the API and the engine spell them. */
const routeFields: [keyof EngineRoute, string][] = [
  ["image", "image"],
  ["type", "type"],
  ["format", "format"],
  ["memory", "memory"],
  ["timeout", "timeout"],
  ["idleTimeout", "idle_timeout"],
  ["maxConcurrency", "max_concurrency"],
];

export function routeDifferences(wanted: EngineRoute, actual: EngineRoute): string[] {
  const fields = routeFields.filter(([key]) => wanted[key] !== actual[key]).map(([, name]) => name);
  if (!sameHeaders(wanted.headers, actual.headers)) fields.push("headers");
  if (!sameStringMap(wanted.config, actual.config)) fields.push("config");
  return fields;
}

/** The differences of one app, given what MySQL and the engine hold for it. */
function appDrift(
  app: AppRow,
  appRoutes: RouteRow[],
  engineApp: EngineApp | undefined,
  engineRoutes: EngineRoute[],
): Drift[] {
  const base = { app: app.name, engineApp: app.engineName };
  if (!engineApp) {
    return [
      { kind: "missing-app", ...base },
      ...appRoutes.map((route): Drift => ({ kind: "missing-route", ...base, path: route.path })),
    ];
  }
  const drift: Drift[] = [];
  if (!sameStringMap(app.config, engineApp.config))
    drift.push({ kind: "app-differs", ...base, fields: ["config"] });
  const actualByPath = new Map(engineRoutes.map((route) => [route.path, route]));
  for (const row of appRoutes) {
    const actual = actualByPath.get(row.path);
    if (!actual) {
      drift.push({ kind: "missing-route", ...base, path: row.path });
      continue;
    }
    const fields = routeDifferences(engineRoute(row), actual);
    if (fields.length > 0) drift.push({ kind: "route-differs", ...base, path: row.path, fields });
  }
  const wantedPaths = new Set(appRoutes.map((route) => route.path));
  for (const route of engineRoutes) {
    if (!wantedPaths.has(route.path)) drift.push({ kind: "extra-route", ...base, path: route.path });
  }
  return drift;
}

/** Compares everything; reads MySQL without locks (a write in flight may show as drift). */
export async function findDrift(sources: Pick<Sources, "db" | "engine">): Promise<Drift[]> {
  const engineApps = await sources.engine.listApps();
  const appRows = await sources.db.select().from(apps).orderBy(asc(apps.name));
  const routeRows = await sources.db.select().from(routes).orderBy(asc(routes.path));
  const routesByApp = groupBy(routeRows, (route) => route.appId);
  const engineByName = new Map(engineApps.map((app) => [app.name, app]));
  const drift: Drift[] = [];
  for (const app of appRows) {
    const engineApp = engineByName.get(app.engineName);
    const engineRoutes = engineApp ? await sources.engine.listRoutes(app.engineName) : [];
    drift.push(...appDrift(app, routesByApp.get(app.id) ?? [], engineApp, engineRoutes));
  }
  const known = new Set(appRows.map((app) => app.engineName));
  for (const app of engineApps) {
    if (!known.has(app.name)) {
      drift.push({
        kind: "extra-app",
        engineApp: app.name,
        createdByPicasso: engineNamePattern.test(app.name),
      });
    }
  }
  return drift;
}

/**
 * Makes the engine match MySQL, app by app. Each app is fixed inside a transaction that locks its
 * rows (as API writes do) and re-reads both sides first, so a create or delete in flight is never
 * undone. Apps on the engine that MySQL does not know are deleted only if their name is one Picasso
 * makes (`pc-` + 27 hex digits); other apps are left alone.
 */
export async function fixDrift(sources: Sources, drift: Drift[]): Promise<FixOutcome[]> {
  const outcomes: FixOutcome[] = [];
  const byEngineApp = groupBy(drift, (item) => item.engineApp);
  for (const [engineApp, items] of byEngineApp) {
    const foreign = items.find((item) => item.kind === "extra-app" && !item.createdByPicasso);
    if (foreign) {
      outcomes.push(...items.map((item): FixOutcome => ({ drift: item, result: "left-alone" })));
      continue;
    }
    try {
      const done = await sources.db.transaction((tx) => fixApp(sources, tx, engineApp));
      outcomes.push(
        ...items.map((item): FixOutcome => ({ drift: item, result: done ? "fixed" : "changed-meanwhile" })),
      );
    } catch (error) {
      const message = (error as Error).message;
      sources.logger.warn("could not fix drift", { engine_app: engineApp, error: message });
      outcomes.push(...items.map((item): FixOutcome => ({ drift: item, result: "failed", error: message })));
    }
  }
  return outcomes;
}

/**
 * Makes the engine's copy of one app match MySQL under the app's row locks, whatever either side
 * holds; for a write whose commit was cut off. Returns false when nothing differed.
 */
export function repairApp(sources: Sources, engineApp: string): Promise<boolean> {
  return sources.db.transaction((tx) => fixApp(sources, tx, engineApp));
}

/** Returns false when the app changed between the report and the fix (nothing to do any more). */
async function fixApp(sources: Sources, tx: Transaction, engineApp: string): Promise<boolean> {
  const { engine } = sources;
  const [app] = await tx.select().from(apps).where(eq(apps.engineName, engineApp)).for("update");
  const engineApps = await engine.listApps();
  const actual = engineApps.find((candidate) => candidate.name === engineApp);
  if (!app) {
    if (!actual) return false;
    for (const route of await engine.listRoutes(engineApp)) {
      await engine.deleteRoute(engineApp, route.path).catch(ignoreNotFound);
    }
    await engine.deleteApp(engineApp).catch(ignoreNotFound);
    return true;
  }
  const appRoutes = await tx.select().from(routes).where(eq(routes.appId, app.id)).for("update");
  const actualRoutes = actual ? await engine.listRoutes(engineApp) : [];
  const drift = appDrift(app, appRoutes, actual, actualRoutes);
  if (drift.length === 0) return false;
  const rowByPath = new Map(appRoutes.map((route) => [route.path, route]));
  const actualByPath = new Map(actualRoutes.map((route) => [route.path, route]));
  for (const item of drift) {
    switch (item.kind) {
      case "missing-app":
        await engine.createApp({ name: engineApp, config: app.config }).catch(ignoreConflict);
        break;
      case "app-differs":
        await engine.updateAppConfig(engineApp, app.config, actual?.config ?? {});
        break;
      case "extra-route":
        await engine.deleteRoute(engineApp, item.path).catch(ignoreNotFound);
        break;
      case "missing-route": {
        const row = rowByPath.get(item.path);
        if (row) await engine.createRoute(engineApp, engineRoute(row));
        break;
      }
      case "route-differs": {
        const row = rowByPath.get(item.path);
        const current = actualByPath.get(item.path);
        if (row && current) await engine.updateRoute(engineApp, engineRoute(row), current);
        break;
      }
      case "extra-app":
        break;
    }
  }
  return true;
}

function groupBy<T, K>(items: T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group) group.push(item);
    else groups.set(key(item), [item]);
  }
  return groups;
}

/** One line per difference, for people and for grep. */
export function describeDrift(item: Drift): string {
  switch (item.kind) {
    case "missing-app":
      return `missing app ${item.app} (engine ${item.engineApp}): in MySQL, not on the engine`;
    case "extra-app":
      return `extra app ${item.engineApp}: on the engine, not in MySQL${item.createdByPicasso ? "" : " (not a Picasso name: never deleted)"}`;
    case "app-differs":
      return `differing app ${item.app} (engine ${item.engineApp}): ${item.fields.join(", ")}`;
    case "missing-route":
      return `missing route ${item.app}${item.path} (engine ${item.engineApp}): in MySQL, not on the engine`;
    case "extra-route":
      return `extra route ${item.app}${item.path} (engine ${item.engineApp}): on the engine, not in MySQL`;
    case "route-differs":
      return `differing route ${item.app}${item.path} (engine ${item.engineApp}): ${item.fields.join(", ")}`;
  }
}
