import { connect, type Socket } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../../app/lib/logger.ts";
import { listen } from "../../app/node/server.ts";
import { testApp } from "../support/app.ts";
import { openTestDatabase } from "../support/db.ts";

const database = openTestDatabase();
afterAll(() => database.close());

const quiet = createLogger({
  level: "error",
  format: "text",
  sink: { write() {}, reopen() {}, close: async () => {} },
});

describe("graceful shutdown", () => {
  it("lets an in-flight request finish, refuses new connections, then resolves", async () => {
    const { app, services } = testApp(database);
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    app.get("/slow", async (c) => {
      await released;
      return c.text("finished");
    });
    const running = await listen({
      fetch: app.fetch,
      host: "127.0.0.1",
      port: 0,
      logger: quiet,
      lifecycle: services.lifecycle,
    });
    const base = `http://127.0.0.1:${running.port}`;

    const inFlight = fetch(`${base}/slow`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stopped = running.shutdown(10_000);
    expect(services.lifecycle.draining).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(fetch(`${base}/`)).rejects.toThrow();

    release();
    const response = await inFlight;
    expect(await response.text()).toBe("finished");
    await stopped;
  });

  it("cuts requests still running when the grace period ends", async () => {
    const { app, services } = testApp(database);
    app.get("/forever", () => new Promise<Response>(() => {}));
    const running = await listen({
      fetch: app.fetch,
      host: "127.0.0.1",
      port: 0,
      logger: quiet,
      lifecycle: services.lifecycle,
    });
    const stuck = fetch(`http://127.0.0.1:${running.port}/forever`).catch((error: Error) => error);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await running.shutdown(300);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await stuck).toBeInstanceOf(Error);
  });

  it("closes connections that never sent a request, but waits for one half sent", async () => {
    const { app, services } = testApp(database);
    app.get("/answer", (c) => c.text("answered"));
    const running = await listen({
      fetch: app.fetch,
      host: "127.0.0.1",
      port: 0,
      logger: quiet,
      lifecycle: services.lifecycle,
    });
    const accepted: Socket[] = [];
    running.server.on("connection", (socket: Socket) => accepted.push(socket));
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const socket = connect(running.port, "127.0.0.1", () => resolve(socket));
        socket.on("error", reject);
      });
    const silent = await open();
    const halfSent = await open();
    let answer = "";
    halfSent.on("data", (chunk: Buffer) => {
      answer += chunk.toString();
    });
    const silentClosed = new Promise((resolve) => silent.once("close", resolve));
    halfSent.write("GET /answer HTTP/1.1\r\nHost: picasso.test\r\n");
    const serverSide = () => accepted.find((socket) => socket.remotePort === halfSent.localPort);
    await expect.poll(() => serverSide()?.bytesRead ?? 0).toBeGreaterThan(0);
    await expect.poll(() => accepted.length).toBe(2);

    const stopped = running.shutdown(20_000);
    await silentClosed;
    halfSent.end("Connection: close\r\n\r\n");
    await expect.poll(() => answer).toContain("answered");
    await stopped;
  });
});
