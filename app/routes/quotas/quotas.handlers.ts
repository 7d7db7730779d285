import type { RouteHandler } from "@hono/zod-openapi";
import type { QuotaReport } from "../../services/quotas/index.ts";
import type { AppEnv } from "../../types.ts";
import type { resetQuotasRoute, showQuotasRoute, updateQuotasRoute } from "./quotas.routes.ts";

export function presentQuotas(projectId: string, report: QuotaReport) {
  const usage = ({ limit, inUse }: { limit: number; inUse: number }) => ({ limit, in_use: inUse });
  return {
    quota_set: {
      project_id: projectId,
      apps: usage(report.apps),
      routes_per_app: usage(report.routes_per_app),
      concurrent_invocations: usage(report.concurrent_invocations),
    },
  };
}

export const showQuotas: RouteHandler<typeof showQuotasRoute, AppEnv> = async (c) => {
  const { project_id } = c.req.valid("param");
  const report = await c.get("services").quotas.report(project_id);
  return c.json(presentQuotas(project_id, report), 200);
};

export const updateQuotas: RouteHandler<typeof updateQuotasRoute, AppEnv> = async (c) => {
  const { project_id } = c.req.valid("param");
  const change = c.req.valid("json");
  const { quotas } = c.get("services");
  await quotas.update(project_id, change);
  c.get("log").info("quotas changed", { target_project_id: project_id, ...change });
  return c.json(presentQuotas(project_id, await quotas.report(project_id)), 200);
};

export const resetQuotas: RouteHandler<typeof resetQuotasRoute, AppEnv> = async (c) => {
  const { project_id } = c.req.valid("param");
  await c.get("services").quotas.reset(project_id);
  c.get("log").info("quotas reset to the defaults", { target_project_id: project_id });
  return c.body(null, 204);
};
