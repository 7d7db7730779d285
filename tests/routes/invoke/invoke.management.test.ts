// Management writes and invocation together: what the API creates is invocable, and this
// instance serves every change at once even with a long route-cache TTL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../../app/lib/logger.ts";
import { KeystoneAuthenticator } from "../../../app/services/keystone/index.ts";
import { createRouteLookup } from "../../../app/services/route-lookup/index.ts";
import { openTestDatabase } from "../../support/db.ts";
import { type InvokeHarness, startInvokeHarness } from "../../support/invoke-harness.ts";
import { KeystoneAdmin, type ProjectWithUsers } from "../../support/keystone.ts";
import { testKeystoneTimeoutMs } from "../../support/keystone-calls.ts";

const database = openTestDatabase();
let harness: InvokeHarness;
let authenticator: KeystoneAuthenticator;
let tenant: ProjectWithUsers;

beforeAll(async () => {
  const admin = await KeystoneAdmin.connect();
  tenant = await admin.createProjectWithUsers();
  authenticator = new KeystoneAuthenticator({
    endpoint: admin.url,
    logger: silentLogger,
    timeoutMs: testKeystoneTimeoutMs,
  });
  harness = await startInvokeHarness(database, {
    authenticator,
    routeLookup: createRouteLookup(database.db, { ttlMs: 600_000, maxEntries: 100 }),
  });
});
afterAll(async () => {
  await harness.close();
  await authenticator.close();
  await database.close();
});

async function manage(method: string, path: string, body?: unknown) {
  const response = await fetch(`${harness.base}/v1/${tenant.project.id}${path}`, {
    method,
    headers: { "x-auth-token": tenant.member.token, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  expect(response.status, `${method} ${path}: ${await response.clone().text()}`).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

describe("routes created through the API", () => {
  it("are invocable, and changes and deletes are served at once", async () => {
    const created = (await manage("POST", "/apps", { app: { name: "greeter", config: {} } })) as {
      app: { name: string };
    };
    const appName = created.app.name;
    const route = (await manage("POST", `/apps/${appName}/routes`, {
      route: { path: "/hello", image: "picasso/hello:0.1", is_public: "false" },
    })) as { route: { is_public: boolean } };
    expect(route.route.is_public).toBe(false);

    const publicUrl = `${harness.base}/r/${appName}/hello`;
    expect((await fetch(publicUrl, { method: "POST", body: "{}" })).status).toBe(403);
    const privately = await fetch(`${harness.base}/v1/r/${tenant.project.id}/${appName}/hello`, {
      method: "POST",
      headers: { "x-auth-token": tenant.member.token },
      body: JSON.stringify({ name: "API" }),
    });
    expect((await privately.text()).trim()).toBe("Hello API!");

    await manage("PATCH", `/apps/${appName}/routes/hello`, { is_public: true });
    const opened = await fetch(publicUrl, { method: "POST", body: "{}" });
    expect(opened.status).toBe(200);
    expect((await opened.text()).trim()).toBe("Hello World!");

    await manage("DELETE", `/apps/${appName}/routes/hello`);
    expect((await fetch(publicUrl, { method: "POST", body: "{}" })).status).toBe(404);
  });
});
