import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { ApiError } from "../../lib/errors.ts";
import type { AppEnv } from "../../types.ts";

/** Management bodies are small: anything larger is refused with 413 before it is parsed. */
export function limitBody(maxBytes: number) {
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError("payload_too_large", `Request body larger than ${maxBytes} bytes`);
    },
  });
  return createMiddleware<AppEnv>(async function limitBodyMiddleware(c, next) {
    return limit(c, next);
  });
}
