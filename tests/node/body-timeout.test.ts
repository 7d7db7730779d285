// --body-timeout: a client that stops sending its request body is answered 408 (or cut off once
// the answer has started) and the engine call is cancelled; a slow upload that keeps moving, or
// one held back by a slow engine, is never cut.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultRoleNames } from "../../app/services/auth/types.ts";
import { createNoAuthAuthenticator } from "../../app/services/noauth/index.ts";
import { openTestDatabase } from "../support/db.ts";
import { type InvokeHarness, type Seeded, seedRoute, startInvokeHarness } from "../support/invoke-harness.ts";

const BODY_TIMEOUT_MS = 500;
const database = openTestDatabase();
let h: InvokeHarness;
let echo: Seeded;
let asyncEcho: Seeded;

beforeAll(async () => {
  h = await startInvokeHarness(database, {
    authenticator: createNoAuthAuthenticator(defaultRoleNames),
    requestLimits: { bodyTimeoutMs: BODY_TIMEOUT_MS },
  });
  echo = await seedRoute(database, h.fake, { route: { image: "echo", path: "/echo" } });
  asyncEcho = await seedRoute(database, h.fake, { route: { image: "echo", path: "/later", type: "async" } });
});
afterAll(async () => {
  await h?.close();
  await database.close();
});

type Exchange = { raw: string; closedAfterMs: number };

/** Sends `head` and the first body bytes, then nothing more; resolves when the server closes. */
function stall(head: string, firstBytes: string): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(h.server.port, "127.0.0.1");
    const started = performance.now();
    let raw = "";
    socket.on("data", (chunk) => {
      raw += chunk.toString();
    });
    socket.on("error", reject);
    socket.on("close", () => resolve({ raw, closedAfterMs: performance.now() - started }));
    socket.write(head + firstBytes);
  });
}

const statusOf = (raw: string) => Number(raw.slice(9, 12));
const bodyOf = (raw: string) => JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4));

describe("--body-timeout", () => {
  it("answers a management body that stops coming with 408 JSON and closes the connection", async () => {
    const head =
      "POST /v1/p1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n";
    const { raw, closedAfterMs } = await stall(head, '{"app": {"na');
    expect(statusOf(raw)).toBe(408);
    expect(raw).toMatch(/\r\nconnection: close\r\n/i);
    expect(bodyOf(raw)).toEqual({
      error: {
        code: "request_timeout",
        message: expect.stringContaining("Request body not received in time"),
      },
    });
    expect(closedAfterMs).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 50);
  });

  it("does the same for a chunked management body", async () => {
    const head =
      "PATCH /v1/p1/apps/a-p1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    const { raw } = await stall(head, '5\r\n{"con\r\n');
    expect(statusOf(raw)).toBe(408);
    expect(bodyOf(raw).error.code).toBe("request_timeout");
  });

  it("answers a stalled invocation body with 408 and cancels the engine call", async () => {
    h.fake.clearInvocations();
    const head = `POST /r/${echo.appName}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n`;
    const { raw } = await stall(head, "partial body");
    expect(statusOf(raw)).toBe(408);
    expect(bodyOf(raw).error.code).toBe("request_timeout");
    // The function saw the caller go away instead of waiting for the rest of the body.
    const call = await h.fake.waitForInvocation((inv) => inv.path === "/echo", 5000);
    expect(call.status).toBe("error");
  });

  it("answers a stalled chunked invocation body with 408 too", async () => {
    const head = `POST /r/${echo.appName}/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const { raw } = await stall(head, "4\r\nabcd\r\n");
    expect(statusOf(raw)).toBe(408);
  });

  it("answers a stalled body on the portable path (async routes) with 408", async () => {
    const head = `POST /r/${asyncEcho.appName}/later HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n`;
    const { raw } = await stall(head, "partial");
    expect(statusOf(raw)).toBe(408);
    expect(bodyOf(raw).error.code).toBe("request_timeout");
  });

  it("never cuts an upload that keeps moving, however long it takes in all", async () => {
    const pieces = 8;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === pieces) return controller.close();
        await new Promise((resolve) => setTimeout(resolve, BODY_TIMEOUT_MS / 3));
        controller.enqueue(new TextEncoder().encode(`piece${sent++};`));
      },
    });
    let sent = 0;
    const response = await fetch(`${h.base}/r/${echo.appName}/echo`, {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("piece7;");
  });

  it("does not count time the engine spends not reading the body against the client", async () => {
    // The engine waits before taking the body; the client has sent everything it can meanwhile.
    h.fake.setFault({ kind: "delay", ms: BODY_TIMEOUT_MS * 3, scope: "r" });
    try {
      const big = new Uint8Array(8 * 1024 * 1024).fill(97);
      const response = await fetch(`${h.base}/r/${echo.appName}/echo`, { method: "POST", body: big });
      expect(response.status).toBe(200);
      expect((await response.arrayBuffer()).byteLength).toBe(big.byteLength);
    } finally {
      h.fake.setFault(null);
    }
  });
});
