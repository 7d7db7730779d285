import { createRouter } from "./lib/create-router.ts";
import { errorAnswer } from "./lib/error-answer.ts";
import { errorBody } from "./lib/errors.ts";
import { accessLog } from "./middleware/access-log/index.ts";
import { httpMetrics } from "./middleware/metrics/index.ts";
import { requestId } from "./middleware/request-id/index.ts";
import { registerApps } from "./routes/apps/apps.index.ts";
import { registerDocs } from "./routes/docs/docs.index.ts";
import { registerHealth } from "./routes/health/health.index.ts";
import { registerInvocation } from "./routes/invoke/invoke.index.ts";
import { registerMeta } from "./routes/meta/meta.index.ts";
import { registerMetrics } from "./routes/metrics/metrics.index.ts";
import { registerQuotas } from "./routes/quotas/quotas.index.ts";
import { registerRoutes } from "./routes/routes/routes.index.ts";
import type { AppServices } from "./types.ts";
import { version } from "./version.ts";

/**
 * Builds the API as a plain Fetch handler: `createApp(services).fetch(request)` runs in any
 * runtime with Request/Response; only the services passed in know about Node, MySQL or sockets.
 */
export function createApp(services: AppServices) {
  const app = createRouter();

  app.use(async function provideServices(c, next) {
    c.set("services", services);
    await next();
  });
  app.use(httpMetrics());
  app.use(requestId());
  app.use(accessLog());

  registerMeta(app);
  registerApps(app);
  registerRoutes(app);
  registerQuotas(app);
  registerHealth(app, services);
  if (services.operator?.metricsEndpoint ?? true) registerMetrics(app);
  registerDocs(app, { version });
  registerInvocation(app);

  app.notFound((c) => c.json(errorBody("not_found", `Not found: ${c.req.method} ${c.req.path}`), 404));

  app.onError(function answerError(caught, c) {
    const { status, body, headers } = errorAnswer(caught, c.get("log") ?? services.logger);
    return c.json(body, status, headers);
  });

  return app;
}

export type PicassoApp = ReturnType<typeof createApp>;
