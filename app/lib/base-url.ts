import type { Context } from "hono";
import type { AppEnv } from "../types.ts";

/** Where clients reach this API: `--public-url` behind a proxy, else the request's own origin. */
export function baseUrl(c: Context<AppEnv>): string {
  return baseUrlFrom(c.get("services").publicUrl, () => new URL(c.req.url).origin);
}

/** The same outside Hono's context: `origin` is asked only when no public URL is configured. */
export function baseUrlFrom(publicUrl: string | undefined, origin: () => string): string {
  const base = publicUrl ?? origin();
  // Every invocation asks (its request URL): skip the regex when there is nothing to strip.
  return base.endsWith("/") ? base.replace(/\/+$/, "") : base;
}
