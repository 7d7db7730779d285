import type { AppRouter } from "../../lib/create-router.ts";
import * as handlers from "./routes.handlers.ts";
import * as routes from "./routes.routes.ts";

/**
 * Item routes are documented with a plain `{route}` parameter but matched with a regex one, so
 * `/routes/a/b` reaches the route `/a/b`: the document gets the plain path, Hono the regex.
 */
function item<R extends { path: string }>(route: R): R {
  return { ...route, path: routes.routingPath(route.path), hide: true };
}

export function registerRoutes(app: AppRouter) {
  for (const route of [
    routes.showRouteRoute,
    routes.putRouteRoute,
    routes.patchRouteRoute,
    routes.deleteRouteRoute,
  ]) {
    const { middleware: _middleware, ...documented } = route;
    app.openAPIRegistry.registerPath(documented);
  }
  app
    .openapi(routes.listRoutesRoute, handlers.listRoutes)
    .openapi(routes.createRouteRoute, handlers.createRoute)
    .openapi(item(routes.showRouteRoute), handlers.showRoute)
    .openapi(item(routes.putRouteRoute), handlers.putRoute)
    .openapi(item(routes.patchRouteRoute), handlers.patchRoute)
    .openapi(item(routes.deleteRouteRoute), handlers.deleteRoute);
}
