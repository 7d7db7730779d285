import { connect } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../app/lib/logger.ts";
import { listen, type ServerLimits } from "../../app/node/server.ts";
import { testApp } from "../support/app.ts";
import { openTestDatabase } from "../support/db.ts";

const database = openTestDatabase();
afterAll(() => database.close());

async function start(limits?: ServerLimits) {
  const { app, services } = testApp(database);
  const running = await listen({
    fetch: app.fetch,
    host: "127.0.0.1",
    port: 0,
    logger: silentLogger,
    lifecycle: services.lifecycle,
    limits,
  });
  return { running, services, base: `http://127.0.0.1:${running.port}` };
}

/** Writes raw bytes on a fresh connection and resolves with everything the server sent back. */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    socket.on("data", (chunk) => {
      received += chunk.toString();
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(received));
    socket.write(bytes);
  });
}

const bodyOf = (raw: string) => JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4));

describe("--shutdown-delay", () => {
  it("answers /healthcheck 503 but keeps serving until the delay ends, then closes", async () => {
    const { running, services, base } = await start();
    const endDelay = new AbortController();
    const stopped = running.shutdown(10_000, { delayMs: 600_000, endDelay: endDelay.signal });
    expect(services.lifecycle.draining).toBe(true);

    const health = await fetch(`${base}/healthcheck`);
    expect(health.status).toBe(503);
    expect(await health.text()).toBe("DRAINING");
    // New connections are still accepted and served while the load balancer notices.
    const served = await fetch(`${base}/`, { headers: { connection: "close" } });
    expect(served.status).toBe(200);

    endDelay.abort();
    await stopped;
    await expect(fetch(`${base}/`)).rejects.toThrow();
  });
});

describe("HTTP server limits", () => {
  it("applies the configured timeouts and never times out a whole request", async () => {
    const { running } = await start({
      headersTimeoutMs: 20_000,
      keepAliveTimeoutMs: 75_000,
      maxHeaderSize: 8192,
    });
    expect(running.server.headersTimeout).toBe(20_000);
    expect(running.server.keepAliveTimeout).toBe(75_000);
    // requestTimeout would cut long streamed invocation bodies: off, bounded by the invocation deadline.
    expect(running.server.requestTimeout).toBe(0);
    expect((running.server as { maxHeaderSize?: number }).maxHeaderSize).toBe(8192);
    await running.shutdown(1000);
  });

  it("answers too large headers with 431 in the API's error shape, with a request id", async () => {
    const { running, base } = await start({ maxHeaderSize: 2048 });
    const response = await fetch(`${base}/`, { headers: { "x-big": "a".repeat(4096) } });
    expect(response.status).toBe(431);
    expect(response.headers.get("x-openstack-request-id")).toMatch(/^req-[0-9a-f-]{36}$/);
    expect(await response.json()).toEqual({
      error: { message: "Request header fields too large", code: "request_header_fields_too_large" },
    });
    // Within the limit is fine.
    expect((await fetch(`${base}/`, { headers: { "x-big": "a".repeat(1024) } })).status).toBe(200);
    await running.shutdown(1000);
  });

  it("answers a malformed request with 400 JSON", async () => {
    const { running } = await start();
    const raw = await rawExchange(running.port, "NOT A REQUEST\r\n\r\n");
    expect(raw).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(bodyOf(raw)).toEqual({ error: { message: "Malformed HTTP request", code: "bad_request" } });
    await running.shutdown(1000);
  });

  it("answers headers that never finish with 408, but lets idle keep-alive connections be", async () => {
    const { running } = await start({ headersTimeoutMs: 500, keepAliveTimeoutMs: 30_000 });
    const raw = await rawExchange(running.port, "GET / HTTP/1.1\r\nHost: x\r\n");
    expect(raw).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(bodyOf(raw).error.code).toBe("request_timeout");

    // A keep-alive connection idle for longer than the header timeout still takes a next request.
    const socket = connect(running.port, "127.0.0.1");
    let received = "";
    socket.on("data", (chunk) => {
      received += chunk.toString();
    });
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    socket.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    await new Promise((resolve) => socket.on("close", resolve));
    expect(received.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    await running.shutdown(1000);
  });
});
