import { z } from "@hono/zod-openapi";
import type { AppRouter } from "../../lib/create-router.ts";

/**
 * Invocation routes are documented through the registry, not `createRoute`: a request body
 * schema would make the validator read (and lock) the body the proxy must stream untouched.
 */
const errorSchema = z.object({ error: z.object({ message: z.string(), code: z.string() }) });
const errorContent = { "application/json": { schema: errorSchema } };
const anyBody = { "*/*": { schema: { type: "string", format: "binary" } as const } };
const methods = ["get", "post", "put", "patch", "delete"] as const;

const integerHeader = (description: string) => ({ description, schema: { type: "integer" as const } });
const rateLimitHeaders = {
  "X-RateLimit-Limit": integerHeader(
    "Invocations per second this caller may make on this route (its `rate_limit`, else the server default)",
  ),
  "X-RateLimit-Remaining": integerHeader(
    "What is left of them in the current second (the burst allowance comes on top)",
  ),
  "X-RateLimit-Reset": integerHeader("Seconds until the per-second allowance refills"),
};

const commonResponses = {
  200: {
    description:
      "The function's response: status, headers and body as the function produced them, plus the `X-RateLimit-*` headers when the invocation is rate limited",
    headers: rateLimitHeaders,
    content: anyBody,
  },
  202: {
    description: "Async route: the call was queued; its id is in the body and in `X-Call-Id`",
    headers: { "X-Call-Id": { schema: { type: "string" as const } } },
    content: { "application/json": { schema: z.object({ call_id: z.string() }) } },
  },
  404: { description: "Unknown app or route", content: errorContent },
  405: { description: "Method not allowed for an async route (only GET and POST)", content: errorContent },
  413: { description: "Request body larger than the limit", content: errorContent },
  429: {
    description:
      "Rate limit exceeded (code `rate_limited`): the caller's bucket for this route is empty; or the project's `concurrent_invocations` quota is in use (code `concurrency_quota_exceeded`). The function was not called; retry after `Retry-After` seconds.",
    headers: {
      "Retry-After": integerHeader("Seconds to wait before the next invocation is allowed (at least 1)"),
      ...rateLimitHeaders,
    },
    content: errorContent,
  },
  502: { description: "Function engine unreachable or failed", content: errorContent },
  503: {
    description:
      "Redis, which holds the rate limit counters, failed and the server fails closed (`--rate-limit-on-redis-failure closed`)",
    headers: { "Retry-After": integerHeader("Seconds to wait before trying again") },
    content: errorContent,
  },
  504: { description: "The function did not answer within its timeout", content: errorContent },
};

export function documentInvocation(app: AppRouter) {
  const appParam = z.string().openapi({ param: { name: "app", in: "path" }, example: "hello-4f0c3c2b" });
  const pathParam = z.string().openapi({
    param: { name: "route_path", in: "path" },
    description: "The route path, one or more segments",
  });
  const projectParam = z.string().openapi({ param: { name: "project_id", in: "path" } });
  for (const method of methods) {
    app.openAPIRegistry.registerPath({
      method,
      path: "/r/{app}/{route_path}",
      tags: ["invocation"],
      summary: "Invoke a public route (no token)",
      description:
        "Forwards method, query string, headers (without hop-by-hop headers, X-Auth-Token, Cookie and Authorization) and body to the function, streaming both ways. A private route answers 403 here. Rate limited per route and client address (429 with `Retry-After`).",
      request: { params: z.object({ app: appParam, route_path: pathParam }) },
      responses: { ...commonResponses, 403: { description: "The route is private", content: errorContent } },
    });
    app.openAPIRegistry.registerPath({
      method,
      path: "/v1/r/{project_id}/{app}/{route_path}",
      tags: ["invocation"],
      summary: "Invoke a route of a project (member or admin token)",
      description:
        "As the public invocation, for any route of the project; rate limited per route and project.",
      security: [{ keystone: [] }],
      request: { params: z.object({ project_id: projectParam, app: appParam, route_path: pathParam }) },
      responses: {
        ...commonResponses,
        401: { description: "Missing or invalid token", content: errorContent },
        403: { description: "Token not scoped to the project, or role too weak", content: errorContent },
      },
    });
  }
}
