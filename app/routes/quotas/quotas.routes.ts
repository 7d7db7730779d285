import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, keystoneSecurity } from "../../lib/openapi.ts";
import { authorize } from "../../middleware/authorize/index.ts";
import { limitBody } from "../../middleware/body-limit/index.ts";
import { requireJsonBody } from "../../middleware/json-body/index.ts";
import { ProjectParam } from "../apps/apps.schemas.ts";
import { QuotaSetSchema, QuotaUpdateBody } from "./quotas.schemas.ts";

/** Three numbers: anything near this size is not a quota update. */
const quotaBodyLimit = 4096;

const projectParams = z.object({ project_id: ProjectParam });

const quotaSet = (description: string) => ({
  description,
  content: { "application/json": { schema: QuotaSetSchema } },
});

const adminOnly =
  "Only a token carrying the admin role (scoped to any project) may do this; the project's own members get 403.";

export const showQuotasRoute = createRoute({
  method: "get",
  path: "/v1/{project_id}/quotas",
  tags: ["quotas"],
  summary: "Show the project's quotas and usage",
  description:
    "Each quota's limit in force (the admin's setting, else the configured default; -1 unlimited) and what the project uses of it now. Readers and members of the project, and admins, may read.",
  security: keystoneSecurity,
  middleware: [authorize("read")],
  request: { params: projectParams },
  responses: { 200: quotaSet("Limits and usage"), ...errorResponses(400, 401, 403) },
});

export const updateQuotasRoute = createRoute({
  method: "put",
  path: "/v1/{project_id}/quotas",
  tags: ["quotas"],
  summary: "Set some of the project's quotas (admin)",
  description: `Changes only the quotas given; null puts one back to the default. A limit below what the project uses now is accepted: its existing apps and routes stay, new ones are refused. ${adminOnly}`,
  security: keystoneSecurity,
  middleware: [authorize("admin"), requireJsonBody(), limitBody(quotaBodyLimit)],
  request: {
    params: projectParams,
    body: { required: true, content: { "application/json": { schema: QuotaUpdateBody } } },
  },
  responses: { 200: quotaSet("The quotas after the change"), ...errorResponses(400, 401, 403, 413, 415) },
});

export const resetQuotasRoute = createRoute({
  method: "delete",
  path: "/v1/{project_id}/quotas",
  tags: ["quotas"],
  summary: "Put every quota of the project back to the defaults (admin)",
  description: adminOnly,
  security: keystoneSecurity,
  middleware: [authorize("admin")],
  request: { params: projectParams },
  responses: { 204: { description: "Reset; no body" }, ...errorResponses(400, 401, 403) },
});
