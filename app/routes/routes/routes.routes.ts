import { createRoute, type z } from "@hono/zod-openapi";
import { errorResponses, keystoneSecurity, PageQuery, readErrors, writeErrors } from "../../lib/openapi.ts";
import { managementMiddleware } from "../apps/apps.routes.ts";
import { MessageSchema } from "../apps/apps.schemas.ts";
import {
  appParams,
  RouteCreateBody,
  RouteEnvelope,
  RouteList,
  RoutePatchBody,
  RoutePutBody,
  routeParams,
} from "./routes.schemas.ts";

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const listRoutesRoute = createRoute({
  method: "get",
  path: "/v1/{project_id}/apps/{app}/routes",
  tags: ["routes"],
  summary: "List an app's routes",
  description:
    "Answered from MySQL, sorted by path (byte order), one page at a time (`limit` default 100, at most 1000; `marker` = last path of the previous page).",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: { params: appParams, query: PageQuery },
  responses: { 200: json(RouteList, "A page of routes"), ...errorResponses(...readErrors) },
});

export const createRouteRoute = createRoute({
  method: "post",
  path: "/v1/{project_id}/apps/{app}/routes",
  tags: ["routes"],
  summary: "Create a route (a function)",
  description:
    "Stores the route and creates it on the function engine; if the engine fails, nothing is kept. Answers 200 (as the original). An app already holding the project's `routes_per_app` quota gets 403 `quota_exceeded`, and nothing is created.",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: {
    params: appParams,
    body: { required: true, content: { "application/json": { schema: RouteCreateBody } } },
  },
  responses: { 200: json(RouteEnvelope, "The created route"), ...errorResponses(...writeErrors, 409) },
});

/** Item routes: `{route}` spans slashes (see routingPath in app/lib/openapi.ts). */
const itemPath = "/v1/{project_id}/apps/{app}/routes/{route}";

export const showRouteRoute = createRoute({
  method: "get",
  path: itemPath,
  tags: ["routes"],
  summary: "Show a route",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: { params: routeParams },
  responses: { 200: json(RouteEnvelope, "The route"), ...errorResponses(...readErrors) },
});

export const putRouteRoute = createRoute({
  method: "put",
  path: itemPath,
  tags: ["routes"],
  summary: "Replace fields of a route",
  description:
    "Each field given replaces the stored one wholesale (`config` and `headers` become exactly the maps sent); fields not given stay. `path` cannot change. `is_public` can.",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: {
    params: routeParams,
    body: { required: true, content: { "application/json": { schema: RoutePutBody } } },
  },
  responses: { 200: json(RouteEnvelope, "The updated route"), ...errorResponses(...writeErrors) },
});

export const patchRouteRoute = createRoute({
  method: "patch",
  path: itemPath,
  tags: ["routes"],
  summary: "Merge changes into a route",
  description:
    "`config` and `headers` are merged into the stored maps (null deletes a key or header; a header given replaces its values); other fields given replace the stored ones.",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: {
    params: routeParams,
    body: { required: true, content: { "application/json": { schema: RoutePatchBody } } },
  },
  responses: { 200: json(RouteEnvelope, "The updated route"), ...errorResponses(...writeErrors) },
});

export const deleteRouteRoute = createRoute({
  method: "delete",
  path: itemPath,
  tags: ["routes"],
  summary: "Delete a route",
  description: "Deletes this route only. Answers 200 with a JSON message, never 204.",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: { params: routeParams },
  responses: { 200: json(MessageSchema, "Deleted"), ...errorResponses(...readErrors, 502, 503, 504) },
});
