import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../types.ts";

const probePaths = new Set(["/healthcheck", "/metrics"]);

/** One line per request; the path only, since query strings may carry secrets. */
export function accessLog() {
  return createMiddleware<AppEnv>(async function accessLogMiddleware(c, next) {
    const started = performance.now();
    await next();
    const duration_ms = Math.round((performance.now() - started) * 10) / 10;
    // Load balancers and Prometheus poll these every few seconds; at INFO they would drown the
    // requests that matter. Failures (503 while draining) stay visible.
    const routine = probePaths.has(c.req.path) && c.res.status < 400;
    c.get("log")[routine ? "debug" : "info"]("request", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      duration_ms,
    });
  });
}
