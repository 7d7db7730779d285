import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "hono";
import { ApiError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logger.ts";
import type { AppEnv, AppServices } from "../../types.ts";
import {
  type InvocationRequest,
  invoke,
  type NodeBindings,
  parseInvocationPath,
  peerAddressOf,
} from "./invocation.ts";

/** `ANY /r/{app}/{path}` and `ANY /v1/r/{project_id}/{app}/{path}` (after `authorize`). */
export async function invokeRoute(c: Context<AppEnv>) {
  const parsed = parseInvocationPath(c.req.path);
  if (!parsed) throw new ApiError("not_found", "Route not found");
  return invoke(new HonoInvocation(c), parsed);
}

/** An invocation that came through Hono's router and middleware (any Fetch runtime). */
class HonoInvocation implements InvocationRequest {
  readonly services: AppServices;
  readonly method: string;
  readonly pathAndQuery: string;
  readonly requestId: string;
  readonly log: Logger;
  readonly node: NodeBindings | null;
  readonly web: Request;
  readonly peerAddress: string | undefined;

  constructor(private readonly c: Context<AppEnv>) {
    this.services = c.get("services");
    this.method = c.req.method;
    const url = c.req.url;
    this.pathAndQuery = url.slice(url.indexOf("/", url.indexOf("//") + 2));
    this.requestId = c.get("requestId");
    this.log = c.get("log");
    this.node = nodeBindings(c);
    this.web = c.req.raw;
    this.peerAddress = this.node ? peerAddressOf(this.node.incoming) : undefined;
  }

  header(name: string): string | undefined {
    return this.c.req.header(name);
  }

  origin(): string {
    return new URL(this.c.req.url).origin;
  }
}

/** @hono/node-server passes Node's request and response as the app's env. */
function nodeBindings(c: Context<AppEnv>): NodeBindings | null {
  const env = c.env as { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;
  return env?.incoming && env.outgoing ? { incoming: env.incoming, outgoing: env.outgoing } : null;
}
