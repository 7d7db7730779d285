import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, keystoneSecurity, PageQuery, readErrors, writeErrors } from "../../lib/openapi.ts";
import { authorize } from "../../middleware/authorize/index.ts";
import { limitBody } from "../../middleware/body-limit/index.ts";
import { bodyTimeout } from "../../middleware/body-timeout/index.ts";
import { requireJsonBody } from "../../middleware/json-body/index.ts";
import {
  AppCreateBody,
  AppEnvelope,
  AppList,
  AppParam,
  AppPatchBody,
  AppPutBody,
  MessageSchema,
  ProjectParam,
} from "./apps.schemas.ts";

/** Bodies of management calls are a few kilobytes; config limits total 32 KiB. */
export const managementBodyLimit = 256 * 1024;

export const managementMiddleware = () => [
  authorize(),
  requireJsonBody(),
  bodyTimeout(),
  limitBody(managementBodyLimit),
];

const projectParams = z.object({ project_id: ProjectParam });
const appParams = z.object({ project_id: ProjectParam, app: AppParam });

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const listAppsRoute = createRoute({
  method: "get",
  path: "/v1/{project_id}/apps",
  tags: ["apps"],
  summary: "List the project's apps",
  description:
    "Answered from MySQL, sorted by name, one page at a time (`limit` default 100, at most 1000; `marker` = last name of the previous page).",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: { params: projectParams, query: PageQuery },
  responses: { 200: json(AppList, "A page of apps"), ...errorResponses(...readErrors) },
});

export const createAppRoute = createRoute({
  method: "post",
  path: "/v1/{project_id}/apps",
  tags: ["apps"],
  summary: "Create an app",
  description:
    "Stores the app in MySQL and creates it on the function engine; if the engine fails, nothing is kept. Answers 200 (as the original) with the app, whose `name` is `{name}-{project_id}`. A project already holding its `apps` quota gets 403 `quota_exceeded`, and nothing is created.",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: {
    params: projectParams,
    body: { required: true, content: { "application/json": { schema: AppCreateBody } } },
  },
  responses: { 200: json(AppEnvelope, "The created app"), ...errorResponses(...writeErrors, 409) },
});

export const showAppRoute = createRoute({
  method: "get",
  path: "/v1/{project_id}/apps/{app}",
  tags: ["apps"],
  summary: "Show an app",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: { params: appParams },
  responses: { 200: json(AppEnvelope, "The app"), ...errorResponses(...readErrors) },
});

export const putAppRoute = createRoute({
  method: "put",
  path: "/v1/{project_id}/apps/{app}",
  tags: ["apps"],
  summary: "Replace fields of an app",
  description:
    "Each field given replaces the stored one wholesale (`config` becomes exactly the map sent); fields not given stay. `name` cannot change.",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: {
    params: appParams,
    body: { required: true, content: { "application/json": { schema: AppPutBody } } },
  },
  responses: { 200: json(AppEnvelope, "The updated app"), ...errorResponses(...writeErrors) },
});

export const patchAppRoute = createRoute({
  method: "patch",
  path: "/v1/{project_id}/apps/{app}",
  tags: ["apps"],
  summary: "Merge changes into an app",
  description:
    "`config` is merged into the stored config (a key set to null is deleted); other fields given replace the stored ones.",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: {
    params: appParams,
    body: { required: true, content: { "application/json": { schema: AppPatchBody } } },
  },
  responses: { 200: json(AppEnvelope, "The updated app"), ...errorResponses(...writeErrors) },
});

export const deleteAppRoute = createRoute({
  method: "delete",
  path: "/v1/{project_id}/apps/{app}",
  tags: ["apps"],
  summary: "Delete an app",
  description:
    "Refused with 403 `Unable to delete app X with routes` while the app has routes (as the original): delete its routes first. Answers 200 with a JSON message, never 204.",
  security: keystoneSecurity,
  middleware: managementMiddleware(),
  request: { params: appParams },
  responses: { 200: json(MessageSchema, "Deleted"), ...errorResponses(...readErrors, 502, 503, 504) },
});
