import { ConfigError, parseFunctionsUrl } from "../../config.ts";
import type { Logger } from "../../lib/logger.ts";
import { createIronFunctionsEngine, type IronFunctionsOptions } from "./ironfunctions/index.ts";
import { createLocalEngine, type LocalEngineOptions } from "./local/index.ts";
import type { FunctionEngine } from "./types.ts";

export type EngineOptions = {
  logger: Logger;
  /** Environment every local function process starts from (see functionBaseEnv in config). */
  baseEnv: { PATH: string; LANG: string };
  /** Settings of the IronFunctions driver (timeouts, JWT key, error hook); the URL comes from `functionsUrl`. */
  ironFunctions?: Partial<IronFunctionsOptions>;
  /** Tuning of the local runner (queue bounds, log limits); defaults suit development. */
  local?: Omit<LocalEngineOptions, "directory" | "logger" | "baseEnv">;
};

/**
 * The one place that knows which engine drivers exist: `http(s)://.../v1` is IronFunctions,
 * `local:<directory>` the local process runner. Everything else sees a FunctionEngine.
 */
export function createEngine(functionsUrl: string, options: EngineOptions): FunctionEngine {
  let target: ReturnType<typeof parseFunctionsUrl>;
  try {
    target = parseFunctionsUrl(functionsUrl);
  } catch (error) {
    throw new ConfigError(`invalid option --functions-url (FUNCTIONS_URL): ${(error as Error).message}`);
  }
  if (target.kind === "local") {
    return createLocalEngine({
      directory: target.directory,
      logger: options.logger.child({ engine: "local" }),
      baseEnv: options.baseEnv,
      ...options.local,
    });
  }
  return createIronFunctionsEngine({ ...options.ironFunctions, url: target.url });
}
