import type { AppRouter } from "../../lib/create-router.ts";
import { registerOperation } from "../../lib/openapi.ts";
import * as handlers from "./quotas.handlers.ts";
import * as routes from "./quotas.routes.ts";

export function registerQuotas(app: AppRouter) {
  registerOperation(app, routes.showQuotasRoute, handlers.showQuotas);
  registerOperation(app, routes.updateQuotasRoute, handlers.updateQuotas);
  registerOperation(app, routes.resetQuotasRoute, handlers.resetQuotas);
}
