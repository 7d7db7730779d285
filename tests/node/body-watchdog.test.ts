// NodeUpload: whether a request body moved at the engine's pace (which holds the route's deadline,
// as undici's headers timeout allowed for) rather than the client's (which does not), and when it
// has been handed on in full (which starts the deadline again).
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { NodeUpload } from "../../app/node/body-watchdog.ts";

let server: Server | undefined;
let client: Socket | undefined;
afterEach(async () => {
  client?.destroy();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = client = undefined;
});

/** A server that hands over its first request unread, and a raw client connected to it. */
async function firstRequest(contentLength: number): Promise<{ incoming: IncomingMessage; socket: Socket }> {
  const requests: IncomingMessage[] = [];
  server = createServer((incoming) => requests.push(incoming));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const socket = connect((server.address() as AddressInfo).port, "127.0.0.1");
  client = socket;
  await once(socket, "connect");
  socket.write(`POST /r/app/up HTTP/1.1\r\nHost: x\r\nContent-Length: ${contentLength}\r\n\r\n`);
  while (requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  return { incoming: requests[0] as IncomingMessage, socket };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

describe("NodeUpload", () => {
  it("does not count a body the client paces as moving at the engine's pace, and says when it was sent", async () => {
    const { incoming, socket } = await firstRequest(10);
    const upload = new NodeUpload(incoming);
    let sent = 0;
    upload.onceSent(() => sent++);
    incoming.resume();
    expect(upload.movedAtEnginePace()).toBe(false);
    socket.write("abcd");
    await settle();
    // The reader took it at once: the client is the slow side.
    expect(upload.movedAtEnginePace()).toBe(false);
    expect(sent).toBe(0);
    socket.write("efghij");
    await settle();
    expect(sent).toBe(1);
    expect(upload.movedAtEnginePace()).toBe(false);
    // Asked after the body ended, it answers at once.
    upload.onceSent(() => sent++);
    expect(sent).toBe(2);
  });

  it("counts a backed-up body the reader takes slowly, not one the reader stopped taking", async () => {
    const { incoming, socket } = await firstRequest(4 * 1024 * 1024);
    socket.write(Buffer.alloc(1024 * 1024, 1));
    await settle();
    // Nobody has read yet: the buffer is full and Node stopped reading the socket.
    expect(incoming.readableLength).toBeGreaterThanOrEqual(incoming.readableHighWaterMark);
    const upload = new NodeUpload(incoming);
    // A slow reader takes one buffer's worth; the client's bytes refill it.
    incoming.read(incoming.readableLength);
    await settle();
    expect(upload.movedAtEnginePace()).toBe(true);
    // The reader stops (a stalled engine): nothing moves.
    await settle();
    expect(upload.movedAtEnginePace()).toBe(false);
  });
});
