import { randomUUID } from "node:crypto";
import { createMiddleware } from "hono/factory";
import { isAlreadySent } from "../../lib/already-sent.ts";
import type { AppEnv } from "../../types.ts";

export const requestIdHeader = "X-Openstack-Request-Id";
const wellFormed = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isWellFormedRequestId(value: string | undefined): value is string {
  return value !== undefined && wellFormed.test(value);
}

/** The caller's id when well formed, else a new one. */
export function requestIdFor(sent: string | undefined): string {
  return isWellFormedRequestId(sent) ? sent : `req-${randomUUID()}`;
}

/**
 * Keeps a caller's well-formed `X-Openstack-Request-Id` (so one id follows a call across OpenStack
 * services) or makes one, and binds it to the request's logger.
 */
export function requestId() {
  return createMiddleware<AppEnv>(async function requestIdMiddleware(c, next) {
    const id = requestIdFor(c.req.header(requestIdHeader));
    c.set("requestId", id);
    c.set("log", c.get("services").logger.child({ request_id: id }));
    await next();
    // A response already written to the socket carries the id itself; touching it would make
    // Hono copy it into a new Response that node-server would then try to send again.
    if (!isAlreadySent(c.res)) c.header(requestIdHeader, id);
  });
}
