import { configLimits, headerLimits } from "./limits.ts";

/** Problems with a config map as `[key or "", message]`; empty when it is valid. */
export function configProblems(config: Record<string, string | null>): [string, string][] {
  const problems: [string, string][] = [];
  const entries = Object.entries(config);
  if (entries.length > configLimits.maxKeys) {
    problems.push(["", `at most ${configLimits.maxKeys} keys`]);
  }
  let total = 0;
  for (const [key, value] of entries) {
    if (key.length > configLimits.keyMaxLength || !configLimits.keyPattern.test(key)) {
      problems.push([
        key,
        `keys must match ${configLimits.keyPattern.source} and have at most ${configLimits.keyMaxLength} characters`,
      ]);
      continue;
    }
    if (value === null) continue;
    if (value.length === 0) problems.push([key, "must not be empty (the engine cannot store empty values)"]);
    else if (value.length > configLimits.valueMaxLength) {
      problems.push([key, `must be at most ${configLimits.valueMaxLength} characters`]);
    } else if (value.includes("\0")) problems.push([key, "must not contain NUL characters"]);
    total += key.length + value.length;
  }
  if (total > configLimits.maxTotalLength) {
    problems.push(["", `keys and values must total at most ${configLimits.maxTotalLength} characters`]);
  }
  return problems;
}

/** `x-custom-header` -> `X-Custom-Header`, as the engine's PATCH stores names (Go's canonical form). */
export function canonicalHeaderName(name: string): string {
  return name
    .toLowerCase()
    .split("-")
    .map((word) => (word ? word[0]?.toUpperCase() + word.slice(1) : word))
    .join("-");
}

const forbiddenHeaders = new Set<string>(headerLimits.forbidden);

/**
 * Validates and canonicalises response headers of a route. Names are stored in canonical form,
 * because the engine keeps create's spelling but canonicalises on PATCH (BEHAVIOUR.md).
 */
export function normaliseHeaders<V extends string[] | null>(
  headers: Record<string, V>,
): { headers: Record<string, V>; problems: [string, string][] } {
  const problems: [string, string][] = [];
  const result: Record<string, V> = {};
  const entries = Object.entries(headers);
  if (entries.length > headerLimits.maxNames) problems.push(["", `at most ${headerLimits.maxNames} headers`]);
  for (const [name, values] of entries) {
    if (name.length > headerLimits.nameMaxLength || !headerLimits.namePattern.test(name)) {
      problems.push([
        name,
        `names must match ${headerLimits.namePattern.source} and have at most ${headerLimits.nameMaxLength} characters`,
      ]);
      continue;
    }
    const canonical = canonicalHeaderName(name);
    if (forbiddenHeaders.has(canonical)) {
      problems.push([name, "is managed by the HTTP server and cannot be set"]);
      continue;
    }
    if (canonical in result) {
      problems.push([name, `given twice (header names are case-insensitive: ${canonical})`]);
      continue;
    }
    if (values !== null) {
      if (values.length === 0) {
        // An empty list crashes every invocation of the route on the engine (BEHAVIOUR.md).
        problems.push([name, "must have at least one value (use null in a PATCH to remove a header)"]);
        continue;
      }
      if (values.length > headerLimits.maxValuesPerName) {
        problems.push([name, `at most ${headerLimits.maxValuesPerName} values`]);
        continue;
      }
      const bad = values.find(
        (value) => value.length > headerLimits.valueMaxLength || !headerLimits.valuePattern.test(value),
      );
      if (bad !== undefined) {
        problems.push([
          name,
          `values must be printable ASCII of at most ${headerLimits.valueMaxLength} characters`,
        ]);
        continue;
      }
    }
    result[canonical] = values;
  }
  return { headers: result, problems };
}

/** `config.KEY: message; config: message`: the field named in every problem. */
export function describeProblems(field: string, problems: [string, string][]): string {
  return problems
    .slice(0, 5)
    .map(([key, message]) => `${key ? `${field}.${key}` : field}: ${message}`)
    .join("; ");
}

/** Limits that only a merge can break (PATCH adds keys to what is stored). */
export function mergedProblems(
  config: Record<string, string>,
  headers?: Record<string, string[]>,
): string | undefined {
  const problems = describeProblems("config", configProblems(config));
  if (problems) return problems;
  if (headers && Object.keys(headers).length > headerLimits.maxNames) {
    return `headers: at most ${headerLimits.maxNames} headers`;
  }
  return undefined;
}
