import { type EngineApp, EngineError, type EngineRoute } from "../types.ts";

/** A route as IronFunctions' JSON spells it. `jwt_key` is deliberately absent: never sent, never read. */
export type WireRoute = {
  path: string;
  image: string;
  type: string;
  format: string;
  memory: number;
  timeout: number;
  idle_timeout: number;
  max_concurrency: number;
  headers: Record<string, string[]>;
  config: Record<string, string>;
};

export type WireRoutePatch = Partial<Omit<WireRoute, "path">>;

/** Hot functions with `idle_timeout` 0 hang the whole engine (BEHAVIOUR.md): never send that. */
export const fallbackIdleTimeout = 30;

function nonEmptyHeaders(headers: Record<string, string[]>): Record<string, string[]> {
  // A header with an empty value list crashes every later invocation of the route on the engine.
  return Object.fromEntries(Object.entries(headers).filter(([, values]) => values.length > 0));
}

export function toWireRoute(route: EngineRoute): WireRoute {
  return {
    path: route.path,
    image: route.image,
    type: route.type,
    format: route.format,
    memory: route.memory,
    timeout: route.timeout,
    idle_timeout: route.idleTimeout > 0 ? route.idleTimeout : fallbackIdleTimeout,
    max_concurrency: route.maxConcurrency,
    headers: nonEmptyHeaders(route.headers),
    config: route.config,
  };
}

const record = (value: unknown): Record<string, unknown> =>
  value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

const stringMap = (value: unknown): Record<string, string> =>
  Object.fromEntries(
    Object.entries(record(value)).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
  );

const headerMap = (value: unknown): Record<string, string[]> =>
  Object.fromEntries(
    Object.entries(record(value))
      .filter(([, values]) => Array.isArray(values))
      .map(([name, values]) => [
        name,
        (values as unknown[]).filter((v): v is string => typeof v === "string"),
      ]),
  );

const integer = (value: unknown, fallback: number) =>
  typeof value === "number" && Number.isFinite(value) ? value : fallback;

/** Reads what the engine returns; engine defaults fill absent fields, `jwt_key` is dropped. */
export function fromWireRoute(value: unknown): EngineRoute {
  const raw = record(value);
  return {
    path: typeof raw.path === "string" ? raw.path : "",
    image: typeof raw.image === "string" ? raw.image : "",
    type: raw.type === "async" ? "async" : "sync",
    format: raw.format === "http" ? "http" : "default",
    memory: integer(raw.memory, 128),
    timeout: integer(raw.timeout, 30),
    idleTimeout: integer(raw.idle_timeout, 0),
    maxConcurrency: integer(raw.max_concurrency, 1),
    headers: headerMap(raw.headers),
    config: stringMap(raw.config),
  };
}

export function fromWireApp(value: unknown): EngineApp {
  const raw = record(value);
  return { name: typeof raw.name === "string" ? raw.name : "", config: stringMap(raw.config) };
}

/**
 * The engine's PATCH merges config, and `""` deletes a key: send only what changed. Values are
 * never empty here (the API refuses them), since the engine could not store one.
 */
export function configPatch(
  previous: Record<string, string>,
  next: Record<string, string>,
): Record<string, string> {
  const patch: Record<string, string> = {};
  for (const key of Object.keys(previous)) if (!(key in next)) patch[key] = "";
  for (const [key, value] of Object.entries(next)) {
    if (value === "")
      throw new EngineError("rejected", `config ${key}: the engine cannot store an empty value`);
    if (previous[key] !== value) patch[key] = value;
  }
  return patch;
}

const sameValues = (a: readonly string[] | undefined, b: readonly string[] | undefined) =>
  a !== undefined && b !== undefined && a.length === b.length && a.every((value, i) => value === b[i]);

const scalarFields = [
  "image",
  "type",
  "format",
  "memory",
  "timeout",
  "idle_timeout",
  "max_concurrency",
] as const satisfies readonly (keyof WireRoutePatch)[];

/**
 * The PATCH bodies that turn the engine's `previous` route into `next`. The engine merges:
 * zero values cannot be sent (refused here), config `""` deletes, and header values are APPENDED,
 * so a header that changes is first deleted (`[]`) and set in a second PATCH. Every header that is
 * set goes through delete-then-set, which makes the whole plan safe to replay.
 */
export function routePatchPlan(previous: EngineRoute, next: EngineRoute): WireRoutePatch[] {
  const target = toWireRoute(next);
  const before = toWireRoute(previous);
  const first: WireRoutePatch = {};
  for (const field of scalarFields) {
    const value = target[field];
    if (value === before[field]) continue;
    if (value === 0 || value === "") {
      throw new EngineError("rejected", `${field}: the engine cannot change a value to zero or empty`);
    }
    (first as Record<string, unknown>)[field] = value;
  }
  const config = configPatch(before.config, target.config);
  if (Object.keys(config).length > 0) first.config = config;

  const clear: Record<string, string[]> = {};
  const set: Record<string, string[]> = {};
  for (const name of Object.keys(before.headers)) {
    if (!(name in target.headers)) clear[name] = [];
  }
  for (const [name, values] of Object.entries(target.headers)) {
    if (sameValues(before.headers[name], values)) continue;
    clear[name] = [];
    set[name] = values;
  }
  if (Object.keys(clear).length > 0) first.headers = clear;
  const plan: WireRoutePatch[] = [];
  if (Object.keys(first).length > 0) plan.push(first);
  if (Object.keys(set).length > 0) plan.push({ headers: set });
  return plan;
}
