import { Pool } from "undici";
import {
  type EngineApp,
  type EngineCall,
  EngineError,
  type EngineRoute,
  type FunctionEngine,
  type ResponseStarter,
  type StreamingEngineCall,
} from "../types.ts";
import { EngineHttp, type EngineHttpOptions, statusError } from "./http.ts";
import { type InvokeOptions, invokeOverHttp, invokeStreamingOverHttp } from "./invoke.ts";
import { configPatch, fromWireApp, fromWireRoute, routePatchPlan, toWireRoute } from "./wire.ts";

export type IronFunctionsOptions = EngineHttpOptions & {
  /** Connections for invocations, kept apart so long-running functions never starve management calls. */
  invokeConnections?: number;
  /** Added to a route's timeout before the gateway stops waiting (the engine enforces the timeout). */
  invokeTimeoutMarginMs?: number;
};

/** The engine's own check of app names is broken (BEHAVIOUR.md): the driver enforces the real rule. */
export const engineAppNamePattern = /^[a-z0-9_-]{1,30}$/;

function appPath(app: string): string {
  if (!engineAppNamePattern.test(app)) {
    throw new EngineError("rejected", `invalid engine app name ${JSON.stringify(app)}`);
  }
  return `/apps/${app}`;
}

/** Route paths are normalised and restricted before they get here; encode anyway, segment by segment. */
function routePath(app: string, path: string): string {
  if (!path.startsWith("/") || path.length < 2) {
    throw new EngineError("rejected", `invalid route path ${JSON.stringify(path)}`);
  }
  const encoded = path
    .slice(1)
    .split("/")
    .map((segment) => encodeURIComponent(segment))
    .join("/");
  return `${appPath(app)}/routes/${encoded}`;
}

const listOf = (body: unknown, key: "apps" | "routes"): unknown[] => {
  const value = (body as Record<string, unknown> | undefined)?.[key];
  return Array.isArray(value) ? value : [];
};

/** `bucket not found`: how the engine's default store answers a delete of an app it does not have. */
const missingBucket = /bucket not found/i;

/**
 * FunctionEngine over IronFunctions' HTTP API v1, honouring the quirks in BEHAVIOUR.md: merge
 * PATCH (config `""` deletes, headers append), no zero values through PATCH, `idle_timeout > 0`
 * for hot functions, `jwt_key` never passed through, optional JWT_AUTH_KEY bearer tokens.
 */
export class IronFunctionsEngine implements FunctionEngine {
  readonly kind = "ironfunctions";
  readonly http: EngineHttp;

  private readonly invocations: Pool;
  /** Both invocation paths: the timeout margin, and engine errors counted like management's. */
  private readonly invokeOptions: InvokeOptions;

  constructor(options: IronFunctionsOptions) {
    this.http = new EngineHttp(options);
    this.invokeOptions = {
      timeoutMarginMs: options.invokeTimeoutMarginMs ?? 2000,
      onEngineError: (error) => this.http.failed(error),
    };
    this.invocations = new Pool(this.http.origin, {
      connections: options.invokeConnections ?? 1024,
      connectTimeout: options.connectTimeoutMs ?? 3000,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 10_000,
    });
  }

  async createApp(app: EngineApp): Promise<void> {
    await this.http.json({
      method: "POST",
      path: "/apps",
      body: { app: { name: app.name, config: app.config } },
    });
  }

  async updateAppConfig(
    name: string,
    next: Record<string, string>,
    previous: Record<string, string>,
  ): Promise<void> {
    const config = configPatch(previous, next);
    if (Object.keys(config).length === 0) return;
    await this.http.json({ method: "PATCH", path: appPath(name), body: { app: { config } } });
  }

  async deleteApp(name: string): Promise<void> {
    const path = appPath(name);
    const response = await this.http.request({ method: "DELETE", path });
    if (response.status >= 200 && response.status < 300) return;
    const error = statusError(response, `DELETE ${path}`);
    if (response.status === 500 && missingBucket.test(error.message)) {
      throw this.http.failed(new EngineError("not_found", error.message, response.status));
    }
    throw this.http.failed(error);
  }

  async listApps(): Promise<EngineApp[]> {
    const body = await this.http.json({ method: "GET", path: "/apps" });
    return listOf(body, "apps")
      .map(fromWireApp)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async createRoute(app: string, route: EngineRoute): Promise<void> {
    await this.http.json({
      method: "POST",
      path: `${appPath(app)}/routes`,
      body: { route: toWireRoute(route) },
    });
  }

  async updateRoute(app: string, next: EngineRoute, previous: EngineRoute): Promise<void> {
    if (next.path !== previous.path) throw new EngineError("rejected", "a route's path cannot change");
    const path = routePath(app, next.path);
    for (const patch of routePatchPlan(previous, next)) {
      await this.http.json({ method: "PATCH", path, body: { route: patch } });
    }
  }

  async deleteRoute(app: string, path: string): Promise<void> {
    await this.http.json({ method: "DELETE", path: routePath(app, path) });
  }

  async listRoutes(app: string): Promise<EngineRoute[]> {
    const body = await this.http.json({ method: "GET", path: `${appPath(app)}/routes` });
    return listOf(body, "routes")
      .map(fromWireRoute)
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  invoke(call: EngineCall): Promise<Response> {
    return invokeOverHttp(this.invocations, call, this.invokeOptions);
  }

  invokeStreaming(call: StreamingEngineCall, start: ResponseStarter): Promise<void> {
    return invokeStreamingOverHttp(this.invocations, call, start, this.invokeOptions);
  }

  async ping(signal?: AbortSignal): Promise<void> {
    await this.http.json({ method: "GET", path: "/version", root: true, signal });
  }

  async close(): Promise<void> {
    await Promise.all([this.http.close(), this.invocations.close()]);
  }
}

export function createIronFunctionsEngine(options: IronFunctionsOptions): IronFunctionsEngine {
  return new IronFunctionsEngine(options);
}
