import { createMiddleware } from "hono/factory";
import { ApiError } from "../../lib/errors.ts";
import type { AppEnv } from "../../types.ts";

const jsonType = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;
const methodsWithBody = new Set(["POST", "PUT", "PATCH"]);

/** JSON endpoints refuse other media types with 415 before anything parses the body. */
export function requireJsonBody() {
  return createMiddleware<AppEnv>(async function requireJsonBodyMiddleware(c, next) {
    if (methodsWithBody.has(c.req.method)) {
      const contentType = c.req.header("content-type");
      if (!contentType || !jsonType.test(contentType)) {
        throw new ApiError("unsupported_media_type", "Invalid content type: send application/json");
      }
    }
    await next();
  });
}
