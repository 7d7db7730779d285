import type { RouteHandler } from "@hono/zod-openapi";
import type { AppEnv } from "../../types.ts";
import type { MetricsRoute } from "./metrics.routes.ts";

export const scrapeMetrics: RouteHandler<MetricsRoute, AppEnv> = async function scrapeMetricsHandler(c) {
  const { registry } = c.get("services").metrics;
  return c.text(await registry.metrics(), 200, {
    "content-type": registry.contentType,
    "cache-control": "no-store",
  });
};
