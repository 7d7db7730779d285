import { createMiddleware } from "hono/factory";
import type { Logger } from "../../lib/logger.ts";
import type { AppEnv } from "../../types.ts";

const probePaths = new Set(["/healthcheck", "/metrics"]);

/** One line per request; the path only, since query strings may carry secrets. */
export function accessLog() {
  return createMiddleware<AppEnv>(async function accessLogMiddleware(c, next) {
    const started = performance.now();
    await next();
    logRequest(c.get("log"), c.req.method, c.req.path, c.res.status, started);
  });
}

/** The access log line; also written by Node's pre-routed invocations, which skip the middleware. */
export function logRequest(log: Logger, method: string, path: string, status: number, started: number): void {
  const duration_ms = Math.round((performance.now() - started) * 10) / 10;
  // Load balancers and Prometheus poll these every few seconds; at INFO they would drown the
  // requests that matter. Failures (503 while draining) stay visible.
  const routine = probePaths.has(path) && status < 400;
  log[routine ? "debug" : "info"]("request", { method, path, status, duration_ms });
}
