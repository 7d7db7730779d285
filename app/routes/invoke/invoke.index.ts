import type { AppRouter } from "../../lib/create-router.ts";
import { authorize } from "../../middleware/authorize/index.ts";
import { invokeRoute } from "./invoke.handlers.ts";
import { documentInvocation } from "./invoke.routes.ts";

export function registerInvocation(app: AppRouter) {
  documentInvocation(app);
  app.all("/r/:app", invokeRoute);
  app.all("/r/:app/*", invokeRoute);
  app.all("/v1/r/:project_id/:app", authorize("write"), invokeRoute);
  app.all("/v1/r/:project_id/:app/*", authorize("write"), invokeRoute);
}
