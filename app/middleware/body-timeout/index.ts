import { createMiddleware } from "hono/factory";
import { bodyTimeoutError, bodyTimeoutMs, withBodyTimeout } from "../../lib/body-timeout.ts";
import type { AppEnv } from "../../types.ts";

/**
 * A client that stops sending its JSON body is answered 408 after `--body-timeout` seconds of
 * silence instead of holding the request (and its connection) open forever. Goes before the body
 * limit, which reads chunked bodies itself. The JSON parser reports a cut-off body as malformed;
 * the timeout is what the client needs to hear, so it replaces that answer.
 */
export function bodyTimeout() {
  return createMiddleware<AppEnv>(async function bodyTimeoutMiddleware(c, next) {
    // `raw.body` materialises a full Request on Node: look at it only when a body was announced.
    const announced = c.req.header("content-length") !== undefined || c.req.header("transfer-encoding");
    const body = announced ? c.req.raw.body : null;
    if (!body) return next();
    const timeoutMs = bodyTimeoutMs(c.get("services"));
    let timedOut = false;
    c.req.raw = new Request(c.req.raw, {
      body: withBodyTimeout(body, timeoutMs, () => {
        timedOut = true;
      }),
      duplex: "half",
    } as RequestInit);
    await next();
    if (timedOut) throw bodyTimeoutError(timeoutMs);
  });
}
