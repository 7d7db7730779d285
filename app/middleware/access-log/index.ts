import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../types.ts";

/** One line per request; the path only, since query strings may carry secrets. */
export function accessLog() {
  return createMiddleware<AppEnv>(async function accessLogMiddleware(c, next) {
    const started = performance.now();
    await next();
    const duration_ms = Math.round((performance.now() - started) * 10) / 10;
    c.var.log.info("request", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      duration_ms,
    });
  });
}
