import { ConfigError } from "../app/config.ts";

/** One line on stderr and a non-zero exit: what operators grep for in a failed unit. */
export function exitWithError(error: unknown, code = 1): never {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`picasso-api: ${message}\n`);
  process.exit(error instanceof ConfigError ? 2 : code);
}
