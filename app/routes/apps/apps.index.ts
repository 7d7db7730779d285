import type { AppRouter } from "../../lib/create-router.ts";
import { keystoneSecurityScheme, registerOperation } from "../../lib/openapi.ts";
import * as handlers from "./apps.handlers.ts";
import * as routes from "./apps.routes.ts";

export function registerApps(app: AppRouter) {
  app.openAPIRegistry.registerComponent("securitySchemes", keystoneSecurityScheme, {
    type: "apiKey",
    in: "header",
    name: "X-Auth-Token",
    description: "A Keystone v3 token scoped to the project in the path (or with the admin role)",
  });
  registerOperation(app, routes.listAppsRoute, handlers.listApps);
  registerOperation(app, routes.createAppRoute, handlers.createApp);
  registerOperation(app, routes.showAppRoute, handlers.showApp);
  registerOperation(app, routes.putAppRoute, handlers.putApp);
  registerOperation(app, routes.patchAppRoute, handlers.patchApp);
  registerOperation(app, routes.deleteAppRoute, handlers.deleteApp);
}
