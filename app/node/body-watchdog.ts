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

/**
 * Asks whether the client's body has moved since the last call: bytes arrived on the socket, or
 * the body completed. Answers false for good once a call has seen it complete.
 */
export function bodyMovement(incoming: IncomingMessage): () => boolean {
  const socket = incoming.socket;
  let bytesSeen = socket.bytesRead;
  let completeSeen = incoming.complete;
  return function bodyMoved() {
    if (completeSeen) return false;
    const moved = socket.bytesRead !== bytesSeen || incoming.complete;
    bytesSeen = socket.bytesRead;
    completeSeen = incoming.complete;
    return moved;
  };
}
