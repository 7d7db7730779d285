import type { ArgsDef } from "citty";
import type { OptionSpec } from "../app/config.ts";

/** citty argument definitions from the config table; defaults stay in the config module. */
export function cliArgs(specs: Record<string, OptionSpec>): ArgsDef {
  const args: ArgsDef = {};
  for (const [name, spec] of Object.entries(specs)) {
    const where = [
      spec.env ? `env ${spec.env}` : "",
      spec.default !== undefined ? `default ${spec.default}` : "",
    ]
      .filter(Boolean)
      .join(", ");
    args[name] = {
      type: spec.boolean ? "boolean" : "string",
      description: where ? `${spec.description} [${where}]` : spec.description,
      required: false,
    };
  }
  return args;
}

/** Keeps only the flags the user actually gave, under their kebab-case names. */
export function givenFlags(
  specs: Record<string, OptionSpec>,
  parsed: Record<string, unknown>,
): Record<string, string | boolean | undefined> {
  const flags: Record<string, string | boolean | undefined> = {};
  for (const name of Object.keys(specs)) {
    const value = parsed[name];
    if (typeof value === "string" || typeof value === "boolean") flags[name] = value;
  }
  return flags;
}
