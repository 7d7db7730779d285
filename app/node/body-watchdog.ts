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
 * Asks whether the request body still holds the exchange up on the client's side: it is not
 * complete, and bytes arrived since the last call or Picasso is waiting for more (its buffer is
 * not full; a full one that stays full means the engine is not reading). The first call after the
 * body completed also answers true, so a deadline held by it starts again from there; every call
 * after that answers false.
 */
export function bodyPendingOn(incoming: IncomingMessage): () => boolean {
  const socket = incoming.socket;
  let bytesSeen = socket.bytesRead;
  let completeSeen = incoming.complete;
  return function bodyPending() {
    if (completeSeen) return false;
    const arrived = socket.bytesRead !== bytesSeen;
    bytesSeen = socket.bytesRead;
    completeSeen = incoming.complete;
    return arrived || completeSeen || incoming.readableLength < incoming.readableHighWaterMark;
  };
}
