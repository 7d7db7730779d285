// bodyPendingOn: whether a request body still holds an invocation up on the client's side, which
// keeps the route's deadline from running out during a slow or stalled upload.
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { bodyPendingOn } from "../../app/node/body-watchdog.ts";

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

describe("bodyPendingOn", () => {
  it("is pending while the body is awaited from the client, once more when it completes, then never", async () => {
    const { incoming, socket } = await firstRequest(10);
    incoming.resume();
    const bodyPending = bodyPendingOn(incoming);
    // Nothing sent yet, and the reader is waiting: the client's turn.
    expect(bodyPending()).toBe(true);
    socket.write("abcd");
    await settle();
    expect(bodyPending()).toBe(true);
    socket.write("efghij");
    await settle();
    expect(incoming.complete).toBe(true);
    expect(bodyPending()).toBe(true);
    expect(bodyPending()).toBe(false);
    socket.write("GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    await settle();
    // Bytes of the next request on the same connection are not this body.
    expect(bodyPending()).toBe(false);
  });

  it("is not pending when the body stops moving because nobody reads it (a stalled engine)", async () => {
    const { incoming, socket } = await firstRequest(4 * 1024 * 1024);
    // Nobody reads `incoming`: its buffer fills and Node stops reading the socket.
    socket.write(Buffer.alloc(1024 * 1024, 1));
    await settle();
    const bodyPending = bodyPendingOn(incoming);
    expect(incoming.readableLength).toBeGreaterThanOrEqual(incoming.readableHighWaterMark);
    expect(bodyPending()).toBe(false);
    // Once the reader takes the buffer, the client's bytes flow again.
    incoming.resume();
    await settle();
    expect(bodyPending()).toBe(true);
  });
});
