import type { Context } from "hono";
import type { AppEnv } from "../types.ts";

/** Where clients reach this API: `--public-url` behind a proxy, else the request's own origin. */
export function baseUrl(c: Context<AppEnv>): string {
  return (c.get("services").publicUrl ?? new URL(c.req.url).origin).replace(/\/+$/, "");
}
