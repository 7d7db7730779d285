import type { EngineRoute } from "../../app/services/engine/types.ts";

/** An engine route with the API's defaults for a new route; tests override what they are about. */
export function engineRoute(overrides: Partial<EngineRoute> = {}): EngineRoute {
  return {
    path: "/hello",
    image: "hello",
    type: "sync",
    format: "default",
    memory: 128,
    timeout: 30,
    idleTimeout: 30,
    maxConcurrency: 1,
    headers: {},
    config: {},
    ...overrides,
  };
}
