import { engineRequestHeaders } from "../../../lib/http-headers.ts";
import type { EngineCall } from "../types.ts";

/** What every function process gets besides its call: never Picasso's own environment. */
export type BaseEnvironment = { PATH: string; HOME: string; LANG: string };

/** IronFunctions' `toEnvName`: upper case, `-` becomes `_`. */
export function envName(prefix: string, name: string): string {
  const upper = name.toUpperCase().replaceAll("-", "_");
  return prefix ? `${prefix}_${upper}` : upper;
}

/** A name or value spawn() would reject, or that would split into two variables. */
function unusable(name: string, value: string): boolean {
  return name === "" || name.includes("=") || name.includes("\0") || value.includes("\0");
}

/**
 * The function's environment under IronFunctions' contract, in its order (later wins): base,
 * METHOD/ROUTE/REQUEST_URL, app config, route config, HEADER_* for each forwarded header.
 * Headers are those the HTTP driver would forward (no Picasso credentials, `Authorization`/`Cookie`
 * only for routes with `forward_auth_headers`, no hop-by-hop, no Host), plus
 * the request id; values of a repeated header arrive merged by the Fetch API (`a, b`), exactly as
 * a function behind Picasso and IronFunctions sees them.
 */
export function functionEnvironment(call: EngineCall, base: BaseEnvironment): Record<string, string> {
  const env: Record<string, string> = { ...base };
  const set = (name: string, value: string) => {
    if (!unusable(name, value)) env[name] = value;
  };
  set("METHOD", call.method);
  set("ROUTE", call.route.path);
  set("REQUEST_URL", requestUrl(call));
  for (const [key, value] of Object.entries(call.appConfig)) set(envName("", key), value);
  for (const [key, value] of Object.entries(call.route.config)) set(envName("", key), value);
  const headers = engineRequestHeaders(call.headers, call.forwardAuthHeaders);
  headers["x-openstack-request-id"] = call.requestId;
  for (const [name, value] of Object.entries(headers)) set(envName("HEADER", name), value);
  return env;
}

/**
 * A URL that reaches this function: the one the client called (public or private form), else the
 * engine-style `http://host/r/{engine app}{path}?{query}`. IronFunctions writes `http//host...`,
 * without the colon, and its own app name; functions get a real URL here.
 */
export function requestUrl(call: EngineCall): string {
  if (call.requestUrl) return call.requestUrl;
  const host = call.headers.get("host") || "localhost";
  return `http://${host}/r/${call.engineApp}${call.path}${call.query ? `?${call.query}` : ""}`;
}

/** A GET's stdin: the first `payload` query value, form-decoded (`+` is a space), as IronFunctions. */
export function getPayload(query: string): string {
  return new URLSearchParams(query).get("payload") ?? "";
}
