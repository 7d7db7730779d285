import { randomBytes, randomUUID } from "node:crypto";
import type { PicassoApp } from "../../app/app.ts";
import { createLogger } from "../../app/lib/logger.ts";
import { preRoutedInvocations } from "../../app/node/invocation-listener.ts";
import { listen, type RunningServer } from "../../app/node/server.ts";
import {
  createIronFunctionsEngine,
  type IronFunctionsEngine,
} from "../../app/services/engine/ironfunctions/index.ts";
import type { EngineRoute } from "../../app/services/engine/types.ts";
import type { AppServices } from "../../app/types.ts";
import type { DatabaseHandle } from "../../db/client.ts";
import { apps, routes } from "../../db/schema.ts";
import { testApp } from "./app.ts";
import { engineRoute } from "./engine-route.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "./ironfunctions/server.ts";

export const defaultRoute: EngineRoute = engineRoute();

/** The production IronFunctions driver, with a short gateway margin to keep timeout tests quick. */
export function invocationEngine(engineUrl: string): IronFunctionsEngine {
  return createIronFunctionsEngine({ url: `${engineUrl}/v1`, invokeTimeoutMarginMs: 500 });
}

export type Seeded = { projectId: string; appName: string; engineApp: string; route: EngineRoute };

/**
 * Puts an app and a route straight into MySQL and the engine, as the management API would,
 * so invocation tests depend on nothing but the proxy.
 */
export async function seedRoute(
  database: DatabaseHandle,
  engine: FakeIronFunctions | null,
  options: {
    projectId?: string;
    isPublic?: boolean;
    maxBodyBytes?: number | null;
    forwardAuthHeaders?: boolean;
    rateLimit?: number | null;
    rateLimitBurst?: number | null;
    route?: Partial<EngineRoute>;
  } = {},
): Promise<Seeded> {
  const projectId = options.projectId ?? randomBytes(16).toString("hex");
  const appId = randomUUID().replaceAll("-", "");
  const appName = `app${randomBytes(4).toString("hex")}-${projectId}`;
  const engineApp = `p${appId.slice(0, 29)}`;
  const route = { ...defaultRoute, ...options.route };
  await database.db.insert(apps).values({
    id: appId,
    projectId,
    name: appName,
    engineName: engineApp,
    description: "test",
    config: {},
  });
  await database.db.insert(routes).values({
    id: randomUUID().replaceAll("-", ""),
    appId,
    projectId,
    ...route,
    isPublic: options.isPublic ?? true,
    maxBodyBytes: options.maxBodyBytes ?? null,
    forwardAuthHeaders: options.forwardAuthHeaders ?? false,
    rateLimit: options.rateLimit ?? null,
    rateLimitBurst: options.rateLimitBurst ?? null,
    description: "",
  });
  if (engine) {
    const driver = createIronFunctionsEngine({ url: engine.apiUrl });
    try {
      await driver.createRoute(engineApp, route);
    } finally {
      await driver.close();
    }
  }
  return { projectId, appName, engineApp, route };
}

export type InvokeHarness = {
  fake: FakeIronFunctions;
  server: RunningServer;
  base: string;
  services: AppServices;
  /** The same app, for calls through `app.fetch` (the portable path, no Node bindings). */
  app: PicassoApp;
  close(): Promise<void>;
};

/** Picasso over real HTTP in front of the fake engine. */
export async function startInvokeHarness(
  database: DatabaseHandle,
  overrides: Partial<AppServices> = {},
  /** false: invocations go through the app on Node, as when the URL is percent-encoded. */
  { preRouted = true }: { preRouted?: boolean } = {},
): Promise<InvokeHarness> {
  const fake = await startFakeIronFunctions();
  const engine = invocationEngine(fake.url);
  const { app, services } = testApp(database, { engine, ...overrides });
  const logger = createLogger({
    level: "error",
    format: "text",
    sink: { write() {}, reopen() {}, close: async () => {} },
  });
  const server = await listen({
    fetch: app.fetch,
    preRouted: preRouted ? preRoutedInvocations(services) : null,
    host: "127.0.0.1",
    port: 0,
    logger,
    lifecycle: services.lifecycle,
  });
  return {
    fake,
    server,
    base: `http://127.0.0.1:${server.port}`,
    services,
    app,
    async close() {
      await server.shutdown(1000);
      await engine.close();
      await fake.stop();
    },
  };
}
