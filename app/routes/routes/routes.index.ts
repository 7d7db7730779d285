import type { AppRouter } from "../../lib/create-router.ts";
import { registerOperation } from "../../lib/openapi.ts";
import * as handlers from "./routes.handlers.ts";
import * as routes from "./routes.routes.ts";

export function registerRoutes(app: AppRouter) {
  registerOperation(app, routes.listRoutesRoute, handlers.listRoutes);
  registerOperation(app, routes.createRouteRoute, handlers.createRoute);
  // `/routes/a/b` reaches the route `/a/b`: registerOperation matches `{route}` across slashes.
  registerOperation(app, routes.showRouteRoute, handlers.showRoute);
  registerOperation(app, routes.putRouteRoute, handlers.putRoute);
  registerOperation(app, routes.patchRouteRoute, handlers.patchRoute);
  registerOperation(app, routes.deleteRouteRoute, handlers.deleteRoute);
}
