import type { IncomingMessage } from "node:http";

/**
 * Calls `onIdle` once the client has sent no body bytes for `timeoutMs` while Picasso was ready
 * to take them, for code that hands Node's request stream on as it is (the invocation fast path).
 * Time the stream's buffer is full never counts against the client: the consumer is not reading
 * (backpressure from a slow engine), so Node has stopped reading the socket and the client could
 * not have sent more. Returns the function that stops watching.
 */
export function watchBodyProgress(
  incoming: IncomingMessage,
  timeoutMs: number,
  onIdle: () => void,
): () => void {
  if (incoming.complete) return () => {};
  const socket = incoming.socket;
  let bytesSeen = socket.bytesRead;
  let lastProgress = performance.now();
  const timer = setInterval(
    () => {
      if (incoming.complete || incoming.destroyed) {
        clearInterval(timer);
        return;
      }
      const now = performance.now();
      const waitingForClient = incoming.readableLength < incoming.readableHighWaterMark;
      if (socket.bytesRead !== bytesSeen || !waitingForClient) {
        bytesSeen = socket.bytesRead;
        lastProgress = now;
        return;
      }
      if (now - lastProgress >= timeoutMs) {
        clearInterval(timer);
        onIdle();
      }
    },
    Math.max(50, Math.min(1000, timeoutMs / 4)),
  );
  timer.unref();
  return () => clearInterval(timer);
}
