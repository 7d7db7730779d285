import type { IncomingMessage } from "node:http";
import type { UploadProgress } from "../services/engine/types.ts";

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
      if (socket.bytesRead !== bytesSeen || readerBehind(incoming)) {
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
 * Node's buffer of the request body is full: whoever reads it (the engine call) is behind, so Node
 * has stopped reading the socket and the client could not send more.
 */
function readerBehind(incoming: IncomingMessage): boolean {
  return incoming.readableLength >= incoming.readableHighWaterMark;
}

/**
 * How the request body of an invocation on Node is moving, for the route's deadline: it is held
 * while the engine takes the body in at its own pace, and starts again once the body has been
 * handed on, as undici's headers timeout did (refreshed on upload backpressure and at the body's
 * end). A body the client paces counts against it, which bounds a client that trickles its body.
 */
export class NodeUpload implements UploadProgress {
  // Node drops `incoming.socket` once the message has been read: keep the one it came on.
  private readonly socket: IncomingMessage["socket"];
  private bytesSeen: number;

  constructor(private readonly incoming: IncomingMessage) {
    this.socket = incoming.socket;
    this.bytesSeen = this.socket.bytesRead;
  }

  /**
   * Bytes arrived since the last call while Picasso's buffer was full: the engine takes the body
   * more slowly than the client sends it. False when the client sets the pace, nothing moves, or
   * the body is complete.
   */
  movedAtEnginePace(): boolean {
    const { incoming } = this;
    if (incoming.complete) return false;
    const bytesRead = this.socket.bytesRead;
    const arrived = bytesRead !== this.bytesSeen;
    this.bytesSeen = bytesRead;
    return arrived && readerBehind(incoming);
  }

  onceSent(listener: () => void): void {
    if (this.incoming.readableEnded) listener();
    else this.incoming.once("end", listener);
  }
}
