import type { AppRouter } from "../../lib/create-router.ts";
import { keystoneSecurityScheme } from "../../lib/openapi.ts";
import * as handlers from "./apps.handlers.ts";
import * as routes from "./apps.routes.ts";

export function registerApps(app: AppRouter) {
  app.openAPIRegistry.registerComponent("securitySchemes", keystoneSecurityScheme, {
    type: "apiKey",
    in: "header",
    name: "X-Auth-Token",
    description: "A Keystone v3 token scoped to the project in the path (or with the admin role)",
  });
  app
    .openapi(routes.listAppsRoute, handlers.listApps)
    .openapi(routes.createAppRoute, handlers.createApp)
    .openapi(routes.showAppRoute, handlers.showApp)
    .openapi(routes.putAppRoute, handlers.putApp)
    .openapi(routes.patchAppRoute, handlers.patchApp)
    .openapi(routes.deleteAppRoute, handlers.deleteApp);
}
