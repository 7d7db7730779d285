import { randomBytes } from "node:crypto";
import { and, asc, eq, gt, sql } from "drizzle-orm";
import { type AppRow, apps, routes } from "../../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import type { AppServices } from "../../types.ts";
import { EngineError } from "../engine/types.ts";
import { isDuplicateKey } from "./failures.ts";
import { mergedProblems } from "./fields.ts";
import { type Transaction, writeThrough } from "./write-through.ts";

type Services = Pick<AppServices, "db" | "engine" | "logger">;
type CreateServices = Services & Pick<AppServices, "quotas">;

/**
 * Engine app names are global and at most 30 characters: `pc-` and 27 hex digits of the app's
 * random id, never derived from tenant input, so they cannot collide across projects.
 */
export const engineNamePattern = /^pc-[0-9a-f]{27}$/;
const engineNameFor = (id: string) => `pc-${id.slice(0, 27)}`;

/** The name clients use in every later call and in public URLs: unique across all projects. */
export const publicAppName = (name: string, projectId: string) => `${name}-${projectId}`;

export const defaultAppDescription = (projectId: string) => `App for project ${projectId}`;

export type AppInput = { name: string; config?: Record<string, string>; description?: string };
export type AppChange = {
  /** Replaces the whole config (PUT). */
  config?: Record<string, string>;
  /** Merges into the config; null deletes a key (PATCH). */
  configPatch?: Record<string, string | null>;
  description?: string;
};

const notFound = (name: string) => new ApiError("not_found", `App ${name} not found`);

export async function listApps(
  services: Services,
  projectId: string,
  page: { limit: number; marker?: string },
): Promise<{ apps: AppRow[]; nextMarker: string | null }> {
  const where = page.marker
    ? and(eq(apps.projectId, projectId), gt(apps.name, page.marker))
    : eq(apps.projectId, projectId);
  const rows = await services.db
    .select()
    .from(apps)
    .where(where)
    .orderBy(asc(apps.name))
    .limit(page.limit + 1);
  const more = rows.length > page.limit;
  const shown = more ? rows.slice(0, page.limit) : rows;
  return { apps: shown, nextMarker: more ? (shown.at(-1)?.name ?? null) : null };
}

export async function findApp(
  db: Services["db"] | Transaction,
  projectId: string,
  name: string,
  options: { lock?: boolean } = {},
): Promise<AppRow> {
  const query = db
    .select()
    .from(apps)
    .where(and(eq(apps.projectId, projectId), eq(apps.name, name)));
  const [row] = options.lock ? await query.for("update") : await query;
  if (!row) throw notFound(name);
  return row;
}

export async function createApp(
  services: CreateServices,
  projectId: string,
  input: AppInput,
): Promise<AppRow> {
  const id = randomBytes(16).toString("hex");
  const name = publicAppName(input.name, projectId);
  const engineName = engineNameFor(id);
  const config = input.config ?? {};
  try {
    return await writeThrough(services, async ({ tx, engine }) => {
      await services.quotas.checkAppCreate(tx, projectId);
      await tx.insert(apps).values({
        id,
        projectId,
        name,
        engineName,
        description: input.description ?? defaultAppDescription(projectId),
        config,
      });
      await engine(
        engineName,
        () => services.engine.createApp({ name: engineName, config }),
        () => services.engine.deleteApp(engineName).catch(ignoreNotFound),
      );
      return findApp(tx, projectId, name);
    });
  } catch (error) {
    if (isDuplicateKey(error)) throw new ApiError("conflict", `App ${name} already exists`);
    throw error;
  }
}

export async function updateApp(
  services: Services,
  projectId: string,
  name: string,
  change: AppChange,
): Promise<AppRow> {
  return writeThrough(services, async ({ tx, engine }) => {
    const current = await findApp(tx, projectId, name, { lock: true });
    let config = change.config ?? current.config;
    if (change.configPatch) {
      config = { ...config };
      for (const [key, value] of Object.entries(change.configPatch)) {
        if (value === null) delete config[key];
        else config[key] = value;
      }
    }
    const problem = mergedProblems(config);
    if (problem) throw new ApiError("validation_failed", `Invalid json: ${problem}`);
    const description = change.description ?? current.description;
    const configChanged = !sameStringMap(config, current.config);
    if (!configChanged && description === current.description) return current;
    await tx
      .update(apps)
      .set({ config, description, updatedAt: sql`CURRENT_TIMESTAMP(3)` })
      .where(eq(apps.id, current.id));
    if (configChanged) {
      await engine(
        current.engineName,
        () => updateOrRecreate(services, current.engineName, config, current.config),
        () => services.engine.updateAppConfig(current.engineName, current.config, config),
      );
    }
    return findApp(tx, projectId, name);
  });
}

/** An app the engine lost (drift) is created again with MySQL's config: MySQL wins. */
async function updateOrRecreate(
  services: Services,
  engineName: string,
  config: Record<string, string>,
  previous: Record<string, string>,
): Promise<void> {
  try {
    await services.engine.updateAppConfig(engineName, config, previous);
  } catch (error) {
    if (!(error instanceof EngineError && error.kind === "not_found")) throw error;
    services.logger.warn("recreating an app MySQL has but the engine lost", { engine_app: engineName });
    await services.engine.createApp({ name: engineName, config });
  }
}

export async function deleteApp(services: Services, projectId: string, name: string): Promise<void> {
  await writeThrough(services, async ({ tx, engine }) => {
    const current = await findApp(tx, projectId, name, { lock: true });
    const [route] = await tx
      .select({ id: routes.id })
      .from(routes)
      .where(eq(routes.appId, current.id))
      .limit(1)
      .for("update");
    if (route) throw new ApiError("forbidden", `Unable to delete app ${name} with routes`);
    await tx.delete(apps).where(eq(apps.id, current.id));
    await engine(
      current.engineName,
      () => services.engine.deleteApp(current.engineName).catch(ignoreNotFound),
      () =>
        services.engine.createApp({ name: current.engineName, config: current.config }).catch(ignoreConflict),
    );
  });
}

export function sameStringMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => key in b && a[key] === b[key]);
}

/** Deleting what the engine does not have leaves it as wanted. */
export function ignoreNotFound(error: unknown): void {
  if (error instanceof EngineError && error.kind === "not_found") return;
  throw error;
}

export function ignoreConflict(error: unknown): void {
  if (error instanceof EngineError && error.kind === "conflict") return;
  throw error;
}
