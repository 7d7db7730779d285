import type { AppServices } from "../types.ts";
import { ApiError } from "./errors.ts";

const defaultBodyTimeoutMs = 60_000;

/** `--body-timeout` in milliseconds, for the app's services. */
export const bodyTimeoutMs = (services: Pick<AppServices, "requestLimits">) =>
  services.requestLimits?.bodyTimeoutMs ?? defaultBodyTimeoutMs;

/** The client sent nothing for `--body-timeout` while its request body was awaited. */
export class BodyTimedOut extends Error {
  override name = "BodyTimedOut";
  constructor(readonly timeoutMs: number) {
    super(`no request body received for ${timeoutMs / 1000} s`);
  }
}

/**
 * The client's answer: 408, and the connection closed, since the rest of the body may still be
 * on its way and cannot be told apart from a next request.
 */
export function bodyTimeoutError(timeoutMs: number): ApiError {
  return new ApiError(
    "request_timeout",
    `Request body not received in time (nothing for ${timeoutMs / 1000} s)`,
    {
      headers: { Connection: "close" },
    },
  );
}

/** The body timeout behind `error` (itself or what caused it), if that is what it is. */
export function bodyTimeoutIn(error: unknown): BodyTimedOut | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    if (current instanceof BodyTimedOut) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The same body, erroring with BodyTimedOut when a read waits `timeoutMs` for the client. The
 * clock runs only while the consumer is asking for data, so time spent not reading (backpressure
 * from a slow engine, or before the body is wanted at all) never counts against the client.
 * The source is not cancelled on a timeout: cancelling destroys the connection, and the caller
 * still has a 408 to send on it.
 */
export function withBodyTimeout(
  body: ReadableStream<Uint8Array>,
  timeoutMs: number,
  onTimeout?: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const idle = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            onTimeout?.();
            reject(new BodyTimedOut(timeoutMs));
          }, timeoutMs);
        });
        try {
          const chunk = await Promise.race([reader.read(), idle]);
          if (chunk.done) controller.close();
          else controller.enqueue(chunk.value);
        } catch (error) {
          controller.error(error);
        } finally {
          clearTimeout(timer);
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
