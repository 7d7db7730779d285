import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppRow } from "../../../db/schema.ts";
import { baseUrl } from "../../lib/base-url.ts";
import { ApiError } from "../../lib/errors.ts";
import * as appsService from "../../services/management/apps.ts";
import { pageLimits } from "../../services/management/limits.ts";
import type { AppEnv } from "../../types.ts";
import type {
  createAppRoute,
  deleteAppRoute,
  listAppsRoute,
  patchAppRoute,
  putAppRoute,
  showAppRoute,
} from "./apps.routes.ts";

export function presentApp(row: AppRow) {
  return {
    id: row.id,
    name: row.name,
    project_id: row.projectId,
    description: row.description,
    config: row.config,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** Where links point: the configured public URL behind a proxy, else the request's own origin. */
export function pageOf(query: { limit?: number; marker?: string }) {
  return {
    limit: Math.min(query.limit ?? pageLimits.default, pageLimits.max),
    marker: query.marker || undefined,
  };
}

export function nextLink(
  c: Context<AppEnv>,
  path: string,
  limit: number,
  marker: string | null,
): string | null {
  if (marker === null) return null;
  const url = new URL(`${baseUrl(c)}${path}`);
  url.searchParams.set("limit", String(limit));
  url.searchParams.set("marker", marker);
  return url.toString();
}

function checkName(given: string | undefined, current: string) {
  if (given !== undefined && given !== current) {
    throw new ApiError("validation_failed", `Invalid json: name: cannot change (the app is ${current})`);
  }
}

export const listApps: RouteHandler<typeof listAppsRoute, AppEnv> = async (c) => {
  const { project_id } = c.req.valid("param");
  const page = pageOf(c.req.valid("query"));
  const result = await appsService.listApps(c.get("services"), project_id, page);
  return c.json(
    {
      apps: result.apps.map(presentApp),
      message: "Successfully listed applications",
      next_marker: result.nextMarker,
      next: nextLink(c, `/v1/${project_id}/apps`, page.limit, result.nextMarker),
    },
    200,
  );
};

export const createApp: RouteHandler<typeof createAppRoute, AppEnv> = async (c) => {
  const { project_id } = c.req.valid("param");
  const body = c.req.valid("json");
  const row = await appsService.createApp(c.get("services"), project_id, body);
  c.get("log").info("app created", { app: row.name, engine_app: row.engineName });
  return c.json({ app: presentApp(row), message: "App successfully created" }, 200);
};

export const showApp: RouteHandler<typeof showAppRoute, AppEnv> = async (c) => {
  const { project_id, app } = c.req.valid("param");
  const row = await appsService.findApp(c.get("services").db, project_id, app);
  return c.json({ app: presentApp(row), message: "Successfully loaded app" }, 200);
};

export const putApp: RouteHandler<typeof putAppRoute, AppEnv> = async (c) => {
  const { project_id, app } = c.req.valid("param");
  const body = c.req.valid("json");
  checkName(body.name, app);
  const row = await appsService.updateApp(c.get("services"), project_id, app, {
    config: body.config,
    description: body.description,
  });
  return c.json({ app: presentApp(row), message: "App successfully updated" }, 200);
};

export const patchApp: RouteHandler<typeof patchAppRoute, AppEnv> = async (c) => {
  const { project_id, app } = c.req.valid("param");
  const body = c.req.valid("json");
  checkName(body.name, app);
  const row = await appsService.updateApp(c.get("services"), project_id, app, {
    configPatch: body.config,
    description: body.description,
  });
  return c.json({ app: presentApp(row), message: "App successfully updated" }, 200);
};

export const deleteApp: RouteHandler<typeof deleteAppRoute, AppEnv> = async (c) => {
  const { project_id, app } = c.req.valid("param");
  await appsService.deleteApp(c.get("services"), project_id, app);
  c.get("log").info("app deleted", { app });
  return c.json({ message: "App successfully deleted" }, 200);
};
