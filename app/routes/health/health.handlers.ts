import type { RouteHandler } from "@hono/zod-openapi";
import type { ReadinessProbe } from "../../services/health/index.ts";
import type { AppEnv } from "../../types.ts";
import type { HealthcheckRoute } from "./health.routes.ts";

const noStore = { "cache-control": "no-store" };

/** Plain answers read only process state, so load balancers may poll them as often as they like. */
export function healthcheck(probe: ReadinessProbe): RouteHandler<HealthcheckRoute, AppEnv> {
  return async function healthcheckHandler(c) {
    const { draining } = c.get("services").lifecycle;
    const detailed = c.req.valid("query").detailed;
    if (detailed !== "1" && detailed !== "true" && detailed !== "yes") {
      return draining ? c.text("DRAINING", 503, noStore) : c.text("OK", 200, noStore);
    }
    const report = await probe.check();
    // Draining is read now, not from the reused report: it must show the moment shutdown begins.
    const status = draining ? "draining" : report.status;
    const httpStatus = status === "draining" || status === "unavailable" ? 503 : 200;
    return c.json({ ...report, status }, httpStatus, noStore);
  };
}
