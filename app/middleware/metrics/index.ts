import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { matchedRoutes } from "hono/route";
import { type Metrics, statusClass } from "../../services/metrics/index.ts";
import type { AppEnv } from "../../types.ts";

const knownMethods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const catchAll = new Set(["", "*", "/*"]);

/**
 * The template of the route that answered (`/v1/:project_id/apps/:app`), or `unmatched`: metric
 * labels must stay a small closed set, so the raw path never becomes one.
 */
export function routeTemplate(c: Context): string {
  const routes = matchedRoutes(c);
  // `app.use` middleware is registered for method ALL; a handler for a method is the route, even
  // when middleware registered after it also matched.
  for (let index = routes.length - 1; index >= 0; index--) {
    const route = routes[index];
    if (route && route.method !== "ALL") return route.path;
  }
  // Only ALL-method routes: an `app.all` handler is the route, the global middleware is not.
  const last = routes.at(-1)?.path ?? "";
  return catchAll.has(last) ? "unmatched" : last;
}

/** Counts and times every request by method, route template and status class. */
export function httpMetrics() {
  return createMiddleware<AppEnv>(async function httpMetricsMiddleware(c, next) {
    const started = performance.now();
    await next();
    recordHttpRequest(c.get("services").metrics, c.req.method, routeTemplate(c), c.res.status, started);
  });
}

/** The request's count and duration; also recorded by Node's pre-routed invocations. */
export function recordHttpRequest(
  metrics: Metrics,
  method: string,
  template: string,
  status: number,
  started: number,
): void {
  const labels = {
    method: knownMethods.has(method) ? method : "other",
    route: template,
    status_class: statusClass(status),
  };
  metrics.httpRequests.record(labels, (performance.now() - started) / 1000);
}
