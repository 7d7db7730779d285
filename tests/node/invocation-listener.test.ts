import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { preRoutedInvocations } from "../../app/node/invocation-listener.ts";
import { listen, type RunningServer } from "../../app/node/server.ts";
import { defaultRoleNames } from "../../app/services/auth/types.ts";
import { createLocalEngine } from "../../app/services/engine/local/index.ts";
import { createNoAuthAuthenticator } from "../../app/services/noauth/index.ts";
import type { AppServices } from "../../app/types.ts";
import { testApp } from "../support/app.ts";
import { openTestDatabase } from "../support/db.ts";
import { invocationEngine, seedRoute } from "../support/invoke-harness.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "../support/ironfunctions/server.ts";
import { captureLogs } from "../support/logs.ts";

const database = openTestDatabase();
const logs = captureLogs();
let fake: FakeIronFunctions;
let engine: ReturnType<typeof invocationEngine>;
let services: AppServices;
let server: RunningServer;
let base: string;
/** Requests that reached the app (Hono) rather than the pre-routed path. */
let appRequests = 0;

beforeAll(async () => {
  fake = await startFakeIronFunctions();
  engine = invocationEngine(fake.url);
  const built = testApp(database, {
    engine,
    logger: logs.logger,
    authenticator: createNoAuthAuthenticator(defaultRoleNames),
  });
  services = built.services;
  server = await listen({
    fetch: (request, env) => {
      appRequests++;
      return built.app.fetch(request, env);
    },
    preRouted: preRoutedInvocations(services),
    host: "127.0.0.1",
    port: 0,
    logger: logs.logger,
    lifecycle: services.lifecycle,
  });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(async () => {
  await server.shutdown(1000);
  await engine.close();
  await fake.stop();
  await database.close();
});

/** The access-log lines of one request id, parsed. */
const accessLines = (requestId: string) =>
  logs.lines
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry.message === "request" && entry.request_id === requestId);

async function scrape(): Promise<string> {
  return services.metrics.registry.metrics();
}

describe("pre-routed invocations: happy paths", () => {
  it("answers public and private invocations without the app, counted and logged like the app's", async () => {
    const { appName, projectId } = await seedRoute(database, fake);
    const before = appRequests;
    const id = "req-0b5e4a36-5a6c-4e43-9f34-1c5a0c4a1f00";
    const publicAnswer = await fetch(`${base}/r/${appName}/hello?x=1`, {
      method: "POST",
      headers: { "x-openstack-request-id": id },
      body: JSON.stringify({ name: "Ann" }),
    });
    expect(publicAnswer.status).toBe(200);
    expect((await publicAnswer.text()).trim()).toBe("Hello Ann!");
    expect(publicAnswer.headers.get("x-openstack-request-id")).toBe(id);

    const privateAnswer = await fetch(`${base}/v1/r/${projectId}/${appName}/hello`, { method: "POST" });
    expect(privateAnswer.status).toBe(200);
    expect(appRequests).toBe(before);

    expect(accessLines(id)).toEqual([
      expect.objectContaining({ method: "POST", path: `/r/${appName}/hello`, status: 200 }),
    ]);
    const privateId = privateAnswer.headers.get("x-openstack-request-id") ?? "";
    expect(accessLines(privateId)).toEqual([
      expect.objectContaining({ user_id: "noauth", project_id: projectId, status: 200 }),
    ]);
    const text = await scrape();
    expect(text).toMatch(
      /picasso_http_requests_total\{method="POST",route="\/r\/:app\/\*",status_class="2xx"\} [1-9]/,
    );
    expect(text).toMatch(
      /picasso_http_requests_total\{method="POST",route="\/v1\/r\/:project_id\/:app\/\*",status_class="2xx"\} [1-9]/,
    );
    expect(text).toMatch(/picasso_invocations_total\{outcome="success"\} [2-9]/);
  });

  it("leaves percent-encoded paths and everything else to the app, which answers them the same", async () => {
    const { appName } = await seedRoute(database, fake);
    const before = appRequests;
    const encoded = await fetch(`${base}/r/${appName}/h%65llo`, { method: "POST" });
    expect(encoded.status).toBe(200);
    expect((await encoded.text()).trim()).toBe("Hello World!");
    const management = await fetch(`${base}/v1/r/`);
    expect(management.status).toBe(404);
    expect(appRequests).toBe(before + 2);
  });

  it("is off for engines that cannot stream to Node sockets", () => {
    const local = createLocalEngine({
      directory: "/nonexistent",
      logger: logs.logger,
      baseEnv: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
    });
    expect(local.invokeStreaming).toBeUndefined();
    expect(preRoutedInvocations({ ...services, engine: local })).toBeNull();
  });
});

describe("pre-routed invocations: errors", () => {
  it("answers refusals as the app's JSON errors, with the request id", async () => {
    const before = appRequests;
    const missing = await fetch(`${base}/r/nosuchapp/hello`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toBe("application/json");
    expect(missing.headers.get("x-openstack-request-id")).toMatch(/^req-/);
    expect(await missing.json()).toEqual({ error: { code: "not_found", message: "Route not found" } });

    const { appName } = await seedRoute(database, fake, { isPublic: false });
    const privateRoute = await fetch(`${base}/r/${appName}/hello`);
    expect(privateRoute.status).toBe(403);
    expect(((await privateRoute.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    expect(appRequests).toBe(before);
    const text = await scrape();
    expect(text).toMatch(
      /picasso_http_requests_total\{method="GET",route="\/r\/:app\/\*",status_class="4xx"\} [2-9]/,
    );
  });
});
