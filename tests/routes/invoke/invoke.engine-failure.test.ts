import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../../app/lib/logger.ts";
import { listen, type RunningServer } from "../../../app/node/server.ts";
import { testApp } from "../../support/app.ts";
import { openTestDatabase } from "../../support/db.ts";
import { invocationEngine, seedRoute } from "../../support/invoke-harness.ts";

const database = openTestDatabase();
const quiet = createLogger({
  level: "error",
  format: "text",
  sink: { write() {}, reopen() {}, close: async () => {} },
});
let dyingEngine: Server;
let picasso: RunningServer;
let engine: ReturnType<typeof invocationEngine>;

beforeAll(async () => {
  // An engine that starts a response, sends part of the body, then its process dies.
  dyingEngine = createServer((request, response) => {
    request.resume();
    response.writeHead(200, { "content-type": "application/octet-stream", "content-length": "1000000" });
    response.write(Buffer.alloc(10_000));
    setTimeout(() => response.socket?.destroy(), 50);
  });
  await new Promise<void>((resolve) => dyingEngine.listen(0, "127.0.0.1", resolve));
  engine = invocationEngine(`http://127.0.0.1:${(dyingEngine.address() as AddressInfo).port}`);
  const { app, services } = testApp(database, { engine });
  picasso = await listen({
    fetch: app.fetch,
    host: "127.0.0.1",
    port: 0,
    logger: quiet,
    lifecycle: services.lifecycle,
  });
});

afterAll(async () => {
  await picasso.shutdown(500);
  await engine.close();
  dyingEngine.closeAllConnections();
  await new Promise((resolve) => dyingEngine.close(resolve));
  await database.close();
});

describe("an engine that dies mid-body", () => {
  it("ends the client's response with an error instead of hanging", async () => {
    const { appName } = await seedRoute(database, null);
    const response = await fetch(`http://127.0.0.1:${picasso.port}/r/${appName}/hello`);
    expect(response.status).toBe(200);
    await expect(response.arrayBuffer()).rejects.toThrow();
  });
});
