import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppRow, RouteRow } from "../../../db/schema.ts";
import { baseUrl } from "../../lib/base-url.ts";
import { ApiError } from "../../lib/errors.ts";
import { normaliseRoutePath } from "../../services/management/route-path.ts";
import type { RouteChange } from "../../services/management/routes.ts";
import * as routesService from "../../services/management/routes.ts";
import type { AppEnv } from "../../types.ts";
import { nextLink, pageOf } from "../apps/apps.handlers.ts";
import type {
  createRouteRoute,
  deleteRouteRoute,
  listRoutesRoute,
  patchRouteRoute,
  putRouteRoute,
  showRouteRoute,
} from "./routes.routes.ts";

export function invokeUrl(base: string, app: AppRow, route: Pick<RouteRow, "path" | "isPublic">): string {
  return route.isPublic
    ? `${base}/r/${app.name}${route.path}`
    : `${base}/v1/r/${app.projectId}/${app.name}${route.path}`;
}

export function presentRoute(base: string, app: AppRow, row: RouteRow) {
  return {
    path: row.path,
    type: row.type,
    format: row.format,
    image: row.image,
    is_public: row.isPublic,
    memory: row.memory,
    timeout: row.timeout,
    idle_timeout: row.idleTimeout,
    max_concurrency: row.maxConcurrency,
    max_body_bytes: row.maxBodyBytes,
    forward_auth_headers: row.forwardAuthHeaders,
    rate_limit: row.rateLimit,
    rate_limit_burst: row.rateLimitBurst,
    headers: row.headers,
    config: row.config,
    description: row.description,
    invoke_url: invokeUrl(base, app, row),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/**
 * The route path as the client sent it. Hono's parameter is percent-decoded (`a%2Fb` -> `a/b`),
 * so the path comes from the raw URL, where any escape is refused by normaliseRoutePath.
 */
function pathFromUrl(c: Context<AppEnv>): string {
  const segments = new URL(c.req.url).pathname.split("/");
  // ["", "v1", project, "apps", app, "routes", ...path]
  const checked = normaliseRoutePath(`/${segments.slice(6).join("/")}`);
  if (!checked.ok) throw new ApiError("validation_failed", `Invalid param: route: ${checked.message}`);
  return checked.path;
}

function checkPath(given: string | undefined, current: string) {
  if (given === undefined) return;
  const checked = normaliseRoutePath(given);
  if (!checked.ok || checked.path !== current) {
    throw new ApiError("validation_failed", `Invalid json: path: cannot change (the route is ${current})`);
  }
}

export const listRoutes: RouteHandler<typeof listRoutesRoute, AppEnv> = async (c) => {
  const { project_id, app } = c.req.valid("param");
  const page = pageOf(c.req.valid("query"));
  const result = await routesService.listRoutes(c.get("services"), project_id, app, page);
  const base = baseUrl(c);
  return c.json(
    {
      routes: result.routes.map((row) => presentRoute(base, result.app, row)),
      message: "Successfully loaded app routes",
      next_marker: result.nextMarker,
      next: nextLink(c, `/v1/${project_id}/apps/${app}/routes`, page.limit, result.nextMarker),
    },
    200,
  );
};

export const createRoute: RouteHandler<typeof createRouteRoute, AppEnv> = async (c) => {
  const { project_id, app } = c.req.valid("param");
  const body = c.req.valid("json");
  const result = await routesService.createRoute(c.get("services"), project_id, app, {
    path: body.path,
    image: body.image,
    type: body.type,
    format: body.format,
    memory: body.memory,
    timeout: body.timeout,
    idleTimeout: body.idle_timeout,
    maxConcurrency: body.max_concurrency,
    headers: body.headers,
    config: body.config,
    isPublic: body.is_public,
    maxBodyBytes: body.max_body_bytes,
    forwardAuthHeaders: body.forward_auth_headers,
    rateLimit: body.rate_limit,
    rateLimitBurst: body.rate_limit_burst,
    description: body.description,
  });
  // This instance serves the change at once; others within the route cache's TTL.
  c.get("services").routeLookup.invalidateApp(app);
  c.get("log").info("route created", { app, path: result.route.path });
  return c.json(
    { route: presentRoute(baseUrl(c), result.app, result.route), message: "App route successfully created" },
    200,
  );
};

export const showRoute: RouteHandler<typeof showRouteRoute, AppEnv> = async (c) => {
  const { project_id, app } = c.req.valid("param");
  const result = await routesService.getRoute(c.get("services"), project_id, app, pathFromUrl(c));
  return c.json(
    { route: presentRoute(baseUrl(c), result.app, result.route), message: "Successfully loaded app route" },
    200,
  );
};

type UpdateBody = {
  path?: string;
  image?: string;
  type?: RouteChange["type"];
  format?: RouteChange["format"];
  memory?: number;
  timeout?: number;
  idle_timeout?: number;
  max_concurrency?: number;
  is_public?: boolean;
  max_body_bytes?: number | null;
  forward_auth_headers?: boolean;
  rate_limit?: number | null;
  rate_limit_burst?: number | null;
  description?: string;
};

/** PUT and PATCH differ only in how `headers` and `config` apply (replace or merge). */
async function updateRoute(
  c: Context<AppEnv>,
  projectId: string,
  app: string,
  body: UpdateBody,
  maps: Partial<Pick<RouteChange, "headers" | "config" | "headersPatch" | "configPatch">>,
) {
  const path = pathFromUrl(c);
  checkPath(body.path, path);
  const result = await routesService.updateRoute(c.get("services"), projectId, app, path, {
    image: body.image,
    type: body.type,
    format: body.format,
    memory: body.memory,
    timeout: body.timeout,
    idleTimeout: body.idle_timeout,
    maxConcurrency: body.max_concurrency,
    isPublic: body.is_public,
    maxBodyBytes: body.max_body_bytes,
    forwardAuthHeaders: body.forward_auth_headers,
    rateLimit: body.rate_limit,
    rateLimitBurst: body.rate_limit_burst,
    description: body.description,
    ...maps,
  });
  c.get("services").routeLookup.invalidateApp(app);
  return { route: presentRoute(baseUrl(c), result.app, result.route), message: "Route successfully updated" };
}

export const putRoute: RouteHandler<typeof putRouteRoute, AppEnv> = async (c) => {
  const { project_id, app } = c.req.valid("param");
  const body = c.req.valid("json");
  return c.json(
    await updateRoute(c, project_id, app, body, { headers: body.headers, config: body.config }),
    200,
  );
};

export const patchRoute: RouteHandler<typeof patchRouteRoute, AppEnv> = async (c) => {
  const { project_id, app } = c.req.valid("param");
  const body = c.req.valid("json");
  return c.json(
    await updateRoute(c, project_id, app, body, { headersPatch: body.headers, configPatch: body.config }),
    200,
  );
};

export const deleteRoute: RouteHandler<typeof deleteRouteRoute, AppEnv> = async (c) => {
  const { project_id, app } = c.req.valid("param");
  const path = pathFromUrl(c);
  await routesService.deleteRoute(c.get("services"), project_id, app, path);
  c.get("services").routeLookup.invalidateApp(app);
  c.get("log").info("route deleted", { app, path });
  return c.json({ message: "Route successfully deleted" }, 200);
};
