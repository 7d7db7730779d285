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
});
