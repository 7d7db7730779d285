// bodyMovement: the invocation path's view of a request body still arriving, which keeps the
// route's deadline from running out during a slow upload.
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { bodyMovement } from "../../app/node/body-watchdog.ts";

let server: Server | undefined;
let client: Socket | undefined;
afterEach(async () => {
  client?.destroy();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = client = undefined;
});

/** A server that hands over its first request unread, and a raw client connected to it. */
async function firstRequest(head: string): Promise<{ incoming: IncomingMessage; socket: Socket }> {
  const requests: IncomingMessage[] = [];
  server = createServer((incoming) => requests.push(incoming));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const socket = connect((server.address() as AddressInfo).port, "127.0.0.1");
  client = socket;
  await once(socket, "connect");
  socket.write(head);
  while (requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  return { incoming: requests[0] as IncomingMessage, socket };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

describe("bodyMovement", () => {
  it("says whether body bytes arrived since it was last asked, then the completion, then never again", async () => {
    const { incoming, socket } = await firstRequest(
      "POST /r/app/up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
    );
    incoming.resume();
    const bodyMoved = bodyMovement(incoming);
    expect(bodyMoved()).toBe(false);
    socket.write("abcd");
    await settle();
    expect(bodyMoved()).toBe(true);
    expect(bodyMoved()).toBe(false);
    socket.write("efghij");
    await settle();
    expect(incoming.complete).toBe(true);
    expect(bodyMoved()).toBe(true);
    expect(bodyMoved()).toBe(false);
    socket.write("GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    await settle();
    // Bytes of the next request on the same connection are not this body moving.
    expect(bodyMoved()).toBe(false);
  });
});
