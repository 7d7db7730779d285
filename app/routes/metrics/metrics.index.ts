import type { AppRouter } from "../../lib/create-router.ts";
import { scrapeMetrics } from "./metrics.handlers.ts";
import { metricsRoute } from "./metrics.routes.ts";

export function registerMetrics(app: AppRouter) {
  app.openapi(metricsRoute, scrapeMetrics);
}
