// The authorize middleware in a real app (createApp) over the real Keystone. The probe routes are
// mounted here only: production code has no route for testing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../../../app/lib/logger.ts";
import { authorize } from "../../../app/middleware/authorize/index.ts";
import { type Authenticator, defaultRoleNames, type RoleNames } from "../../../app/services/auth/types.ts";
import {
  KeystoneAuthenticator,
  type KeystoneAuthenticatorOptions,
} from "../../../app/services/keystone/index.ts";
import { testApp } from "../../support/app.ts";
import { freePort } from "../../support/cli.ts";
import { freshId, openTestDatabase } from "../../support/db.ts";
import { KeystoneAdmin, type KeystoneUser, type ProjectWithUsers } from "../../support/keystone.ts";
import { removeQuietly, testKeystoneTimeoutMs } from "../../support/keystone-calls.ts";
import { captureLogs } from "../../support/logs.ts";

const database = openTestDatabase();
let admin: KeystoneAdmin;
let cast: ProjectWithUsers;
let other: ProjectWithUsers;
const users: KeystoneUser[] = [];
const authenticators: KeystoneAuthenticator[] = [];

function keystone(options: Partial<KeystoneAuthenticatorOptions> = {}) {
  const created = new KeystoneAuthenticator({
    endpoint: admin.url,
    timeoutMs: testKeystoneTimeoutMs,
    logger: captureLogs().logger,
    ...options,
  });
  authenticators.push(created);
  return created;
}

function probeApp(authenticator: Authenticator, options: { roleNames?: RoleNames; logger?: Logger } = {}) {
  const { app } = testApp(database, {
    authenticator,
    roleNames: options.roleNames ?? defaultRoleNames,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  app.get("/v1/:project_id/probe", authorize("read"), (c) => c.json({ identity: c.var.identity }));
  app.post("/v1/:project_id/probe", authorize("write"), (c) => c.json({ written: true }));
  app.on(["GET", "PUT", "DELETE"], "/v1/:project_id/by-method", authorize(), (c) => c.json({ ok: true }));
  return app;
}

const call = (
  app: ReturnType<typeof probeApp>,
  method: string,
  projectId: string,
  token?: string,
  path = "probe",
) =>
  app.fetch(
    new Request(`http://picasso.test/v1/${projectId}/${path}`, {
      method,
      headers: token === undefined ? {} : { "x-auth-token": token },
    }),
  );

async function newUser(grant: (user: KeystoneUser) => Promise<void>) {
  const user = await admin.createUser();
  users.push(user);
  await grant(user);
  return user;
}

beforeAll(async () => {
  admin = await KeystoneAdmin.connect();
  [cast, other] = await Promise.all([admin.createProjectWithUsers(), admin.createProjectWithUsers()]);
});

afterAll(async () => {
  await Promise.all(authenticators.map((created) => created.close()));
  await removeQuietly(admin, {
    users: [cast.member, cast.reader, other.member, other.reader, ...users].map((user) => user.id),
    projects: [cast.project.id, other.project.id],
  });
  await database.close();
});

describe("authorize with Keystone", () => {
  it("lets a member read and write its project and hands the identity to the handler", async () => {
    const app = probeApp(keystone());
    const read = await call(app, "GET", cast.project.id, cast.member.token);
    expect(read.status).toBe(200);
    const { identity } = (await read.json()) as {
      identity: { userId: string; projectId: string; roles: string[] };
    };
    expect(identity.userId).toBe(cast.member.id);
    expect(identity.projectId).toBe(cast.project.id);
    expect(new Set(identity.roles)).toEqual(new Set(["member", "reader"]));
    expect((await call(app, "POST", cast.project.id, cast.member.token)).status).toBe(200);
  });

  it("lets a reader read but not write", async () => {
    const app = probeApp(keystone());
    expect((await call(app, "GET", cast.project.id, cast.reader.token)).status).toBe(200);
    const write = await call(app, "POST", cast.project.id, cast.reader.token);
    expect(write.status).toBe(403);
    expect(await write.json()).toEqual({ error: { code: "forbidden", message: "Role member is required" } });
    expect((await call(app, "GET", cast.project.id, cast.reader.token, "by-method")).status).toBe(200);
    expect((await call(app, "PUT", cast.project.id, cast.reader.token, "by-method")).status).toBe(403);
    expect((await call(app, "DELETE", cast.project.id, cast.reader.token, "by-method")).status).toBe(403);
    expect((await call(app, "DELETE", cast.project.id, cast.member.token, "by-method")).status).toBe(200);
  });

  it("refuses another project's token with a 403 that says nothing about the project", async () => {
    const app = probeApp(keystone());
    const existing = await call(app, "GET", other.project.id, cast.member.token);
    const missing = await call(app, "GET", freshId(), cast.member.token);
    expect(existing.status).toBe(403);
    expect(missing.status).toBe(403);
    const existingBody = await existing.text();
    // The same answer whether the project exists or not.
    expect(existingBody).toBe(await missing.text());
    expect(existingBody).not.toContain(other.project.id);
    expect(existingBody).not.toContain(other.project.name);
    expect(JSON.parse(existingBody)).toEqual({
      error: { code: "forbidden", message: "The token is not scoped to this project" },
    });
    expect((await call(app, "POST", other.project.id, cast.member.token)).status).toBe(403);
  });

  it("lets a project-scoped admin act on any project", async () => {
    const app = probeApp(keystone());
    expect((await call(app, "GET", cast.project.id, admin.token)).status).toBe(200);
    expect((await call(app, "POST", other.project.id, admin.token)).status).toBe(200);
    expect((await call(app, "POST", freshId(), admin.token)).status).toBe(200);
  });

  it("refuses domain-scoped and unscoped tokens on project paths with 403, even with admin", async () => {
    const domainAdmin = await newUser((user) => admin.grantDomain("default", user.id, "admin"));
    const domainToken = await admin.issueToken({
      username: domainAdmin.name,
      password: domainAdmin.password,
      scope: { domainId: "default" },
    });
    const unscoped = await admin.issueToken({
      username: cast.member.name,
      password: cast.member.password,
      scope: "unscoped",
    });
    const app = probeApp(keystone());
    for (const token of [domainToken, unscoped]) {
      const response = await call(app, "GET", cast.project.id, token);
      expect(response.status).toBe(403);
      expect(response.headers.get("www-authenticate")).toBeNull();
    }
  });

  it.each([
    ["no", undefined, "Authentication required"],
    ["an empty", "", "Authentication required"],
    ["a garbage", "garbage", "invalid, expired or revoked"],
    ["an oversized", "x".repeat(10_000), "invalid, expired or revoked"],
  ])("answers %s token with 401 and WWW-Authenticate", async (_name, token, message) => {
    const app = probeApp(keystone());
    const response = await call(app, "GET", cast.project.id, token);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe(`Keystone uri="${admin.url.replace(/\/v3$/, "")}"`);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("unauthorized");
    expect(body.error.message).toContain(message);
  });

  it("answers a revoked token with 401 at once when the cache is off", async () => {
    const token = await admin.issueToken({
      username: cast.member.name,
      password: cast.member.password,
      scope: { projectId: cast.project.id },
    });
    const app = probeApp(keystone({ cacheTtlMs: 0 }));
    expect((await call(app, "GET", cast.project.id, token)).status).toBe(200);
    await admin.revokeToken(token);
    const response = await call(app, "GET", cast.project.id, token);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain("Keystone uri=");
  });

  it("answers 503 without WWW-Authenticate when Keystone is unreachable", async () => {
    const app = probeApp(keystone({ endpoint: `http://127.0.0.1:${await freePort()}/v3` }));
    const response = await call(app, "GET", cast.project.id, cast.member.token);
    expect(response.status).toBe(503);
    expect(response.headers.get("www-authenticate")).toBeNull();
    expect(response.headers.get("retry-after")).toBe("5");
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("service_unavailable");
  });

  it("adds user_id and project_id to the request's log lines, never the token", async () => {
    const logs = captureLogs();
    const app = probeApp(keystone(), { logger: logs.logger });
    await call(app, "GET", cast.project.id, cast.member.token);
    await call(app, "GET", other.project.id, cast.reader.token);
    const lines = logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const requests = lines.filter((line) => line.message === "request");
    expect(requests).toEqual([
      expect.objectContaining({ status: 200, user_id: cast.member.id, project_id: cast.project.id }),
      expect.objectContaining({ status: 403, user_id: cast.reader.id, project_id: cast.project.id }),
    ]);
    expect(logs.text()).not.toContain(cast.member.token);
    expect(logs.text()).not.toContain(cast.reader.token);
  });

  it("uses the configured role names", async () => {
    const roleNames = {
      reader: "picasso-test-observer",
      member: "picasso-test-developer",
      admin: "picasso-test-operator",
    };
    const observer = await newUser((user) => admin.grant(cast.project.id, user.id, roleNames.reader));
    const token = await admin.issueToken({
      username: observer.name,
      password: observer.password,
      scope: { projectId: cast.project.id },
    });
    const app = probeApp(keystone(), { roleNames });
    expect((await call(app, "GET", cast.project.id, token)).status).toBe(200);
    const write = await call(app, "POST", cast.project.id, token);
    expect(write.status).toBe(403);
    expect(((await write.json()) as { error: { message: string } }).error.message).toBe(
      "Role picasso-test-developer is required",
    );
    // Keystone's own member role means nothing under other names.
    expect((await call(app, "GET", cast.project.id, cast.member.token)).status).toBe(403);
  });
});
