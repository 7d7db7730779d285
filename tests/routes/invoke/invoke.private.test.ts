// Private invocation with real Keystone tokens: scope, roles and cross-project isolation.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../../app/lib/logger.ts";
import { KeystoneAuthenticator } from "../../../app/services/keystone/index.ts";
import { openTestDatabase } from "../../support/db.ts";
import { type InvokeHarness, seedRoute, startInvokeHarness } from "../../support/invoke-harness.ts";
import { KeystoneAdmin, type ProjectWithUsers } from "../../support/keystone.ts";
import { testKeystoneTimeoutMs } from "../../support/keystone-calls.ts";

const database = openTestDatabase();
let harness: InvokeHarness;
let authenticator: KeystoneAuthenticator;
let own: ProjectWithUsers;
let other: ProjectWithUsers;
let adminToken: string;

beforeAll(async () => {
  const admin = await KeystoneAdmin.connect();
  [own, other] = await Promise.all([admin.createProjectWithUsers(), admin.createProjectWithUsers()]);
  adminToken = admin.token;
  authenticator = new KeystoneAuthenticator({
    endpoint: admin.url,
    logger: silentLogger,
    timeoutMs: testKeystoneTimeoutMs,
  });
  harness = await startInvokeHarness(database, { authenticator });
});
afterAll(async () => {
  await harness.close();
  await authenticator.close();
  await database.close();
});

const invoke = (projectId: string, appName: string, token?: string, path = "/hello") =>
  fetch(`${harness.base}/v1/r/${projectId}/${appName}${path}`, {
    method: "POST",
    headers: token ? { "x-auth-token": token } : {},
    body: JSON.stringify({ name: "Private" }),
  });

describe("private invocation", () => {
  it("runs a private route for a member of its project", async () => {
    const { appName } = await seedRoute(database, harness.fake, {
      projectId: own.project.id,
      isPublic: false,
    });
    const response = await invoke(own.project.id, appName, own.member.token);
    expect(response.status).toBe(200);
    expect((await response.text()).trim()).toBe("Hello Private!");
  });

  it("runs a public route privately too", async () => {
    const { appName } = await seedRoute(database, harness.fake, {
      projectId: own.project.id,
      isPublic: true,
    });
    expect((await invoke(own.project.id, appName, own.member.token)).status).toBe(200);
  });

  it("lets a project-scoped admin invoke any project's route", async () => {
    const { appName } = await seedRoute(database, harness.fake, {
      projectId: other.project.id,
      isPublic: false,
    });
    expect((await invoke(other.project.id, appName, adminToken)).status).toBe(200);
  });

  it("answers 401 with WWW-Authenticate without a token or with a bad one, never reaching the engine", async () => {
    const { appName, engineApp } = await seedRoute(database, harness.fake, {
      projectId: own.project.id,
      isPublic: false,
    });
    harness.fake.clearRequests();
    for (const token of [undefined, "garbage-token"]) {
      const response = await invoke(own.project.id, appName, token);
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toMatch(/^Keystone uri="/);
      expect(await response.json()).toMatchObject({ error: { code: "unauthorized" } });
    }
    expect(harness.fake.requests.some((request) => request.path.startsWith(`/r/${engineApp}`))).toBe(false);
  });

  it("refuses a reader: invoking is a write", async () => {
    const { appName } = await seedRoute(database, harness.fake, {
      projectId: own.project.id,
      isPublic: false,
    });
    const response = await invoke(own.project.id, appName, own.reader.token);
    expect(response.status).toBe(403);
  });

  it("refuses another project's member, by the owner's path or by their own", async () => {
    const { appName, engineApp } = await seedRoute(database, harness.fake, {
      projectId: own.project.id,
      isPublic: false,
    });
    harness.fake.clearRequests();
    const viaOwnerPath = await invoke(own.project.id, appName, other.member.token);
    expect(viaOwnerPath.status).toBe(403);
    // Their own project in the path, the owner's app name: looks exactly like a missing route.
    const viaOwnPath = await invoke(other.project.id, appName, other.member.token);
    expect(viaOwnPath.status).toBe(404);
    const missing = await invoke(other.project.id, "no-such-app", other.member.token);
    expect(await viaOwnPath.json()).toEqual(await missing.json());
    expect(harness.fake.requests.some((request) => request.path.startsWith(`/r/${engineApp}`))).toBe(false);
  });
});
