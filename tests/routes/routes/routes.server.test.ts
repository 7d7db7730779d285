import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen, type RunningServer } from "../../../app/node/server.ts";
import { type Cast, castFor, type Harness, startHarness } from "../../support/management.ts";

// The same API over a real HTTP server, as the original's CLI reaches it: raw paths with several
// segments, Content-Type only with a body, JSON answers for DELETE.
let h: Harness;
let cast: Cast;
let server: RunningServer;
let base: string;

beforeAll(async () => {
  h = await startHarness();
  cast = await castFor(h);
  server = await listen({
    fetch: h.app.fetch,
    host: "127.0.0.1",
    port: 0,
    logger: h.services.logger,
    lifecycle: h.services.lifecycle,
  });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(async () => {
  await server?.shutdown(1000);
  await h?.close();
});

async function send(method: string, path: string, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      "X-Auth-Token": cast.member,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, type: response.headers.get("content-type"), body: await response.json() };
}

describe("management over a real server", () => {
  it("runs the CLI's sequence: app, route with a multi-segment path, show, update, delete", async () => {
    const created = await send("POST", `/v1/${cast.projectId}/apps`, { app: { name: "cli", config: {} } });
    expect(created.status).toBe(200);
    const app = created.body.app.name as string;
    const route = await send("POST", `/v1/${cast.projectId}/apps/${app}/routes`, {
      route: {
        type: "sync",
        path: "/a/b",
        image: "hello",
        memory: 128,
        timeout: 30,
        max_concurrency: 1,
        is_public: "true",
        config: {},
      },
    });
    expect(route.status).toBe(200);
    expect(route.body.route.invoke_url).toBe(`${base}/r/${app}/a/b`);

    const shown = await send("GET", `/v1/${cast.projectId}/apps/${app}/routes/a/b`);
    expect(shown.body.route.path).toBe("/a/b");
    const updated = await send("PUT", `/v1/${cast.projectId}/apps/${app}/routes/a/b`, { timeout: 60 });
    expect(updated.body.route.timeout).toBe(60);
    const encoded = await send("GET", `/v1/${cast.projectId}/apps/${app}/routes/a%2Fb`);
    expect(encoded.status).toBe(400);

    const deleted = await send("DELETE", `/v1/${cast.projectId}/apps/${app}/routes/a/b`);
    expect(deleted).toEqual({
      status: 200,
      type: "application/json",
      body: { message: "Route successfully deleted" },
    });
    const appDeleted = await send("DELETE", `/v1/${cast.projectId}/apps/${app}`);
    expect(appDeleted.body).toEqual({ message: "App successfully deleted" });
  });
});
