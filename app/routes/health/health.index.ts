import type { AppRouter } from "../../lib/create-router.ts";
import { createReadinessProbe } from "../../services/health/index.ts";
import type { AppServices } from "../../types.ts";
import { healthcheck } from "./health.handlers.ts";
import { healthcheckRoute } from "./health.routes.ts";

export const defaultHealthCacheMs = 5000;
export const defaultHealthTimeoutMs = 3000;

/** The probe (and its cache) belongs to this app: two apps never share results. */
export function registerHealth(app: AppRouter, services: AppServices) {
  const probe = createReadinessProbe(services, {
    cacheMs: services.operator?.healthCacheMs ?? defaultHealthCacheMs,
    timeoutMs: services.operator?.healthTimeoutMs ?? defaultHealthTimeoutMs,
  });
  app.openapi(healthcheckRoute, healthcheck(probe));
}
