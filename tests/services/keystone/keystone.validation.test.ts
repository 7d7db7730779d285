// Token validation against the real Keystone, with each token validating itself (no service
// credentials): what `serve --keystone-endpoint URL` alone does.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../../../app/lib/errors.ts";
import { silentLogger } from "../../../app/lib/logger.ts";
import { KeystoneAuthenticator } from "../../../app/services/keystone/index.ts";
import { freePort } from "../../support/cli.ts";
import { KeystoneAdmin, type ProjectWithUsers } from "../../support/keystone.ts";
import {
  countingFetch,
  movableClock,
  removeQuietly,
  testKeystoneTimeoutMs,
} from "../../support/keystone-calls.ts";
import { captureLogs } from "../../support/logs.ts";

let admin: KeystoneAdmin;
let cast: ProjectWithUsers;
const authenticators: KeystoneAuthenticator[] = [];

function authenticator(options: Partial<ConstructorParameters<typeof KeystoneAuthenticator>[0]> = {}) {
  const created = new KeystoneAuthenticator({
    endpoint: admin.url,
    logger: silentLogger,
    timeoutMs: testKeystoneTimeoutMs,
    ...options,
  });
  authenticators.push(created);
  return created;
}

const memberToken = () =>
  admin.issueToken({
    username: cast.member.name,
    password: cast.member.password,
    scope: { projectId: cast.project.id },
  });

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

beforeAll(async () => {
  admin = await KeystoneAdmin.connect();
  cast = await admin.createProjectWithUsers();
});

afterAll(async () => {
  await Promise.all(authenticators.map((created) => created.close()));
  await removeQuietly(admin, { users: [cast.member.id, cast.reader.id], projects: [cast.project.id] });
});

describe("Keystone authenticator, self-validation", () => {
  it("turns a member token into the identity Keystone reports", async () => {
    const keystone = authenticator();
    expect(keystone.mode).toBe("self");
    const identity = await keystone.authenticate(cast.member.token, cast.project.id);
    expect(identity.userId).toBe(cast.member.id);
    expect(identity.projectId).toBe(cast.project.id);
    expect(new Set(identity.roles)).toEqual(new Set(["member", "reader"]));
    expect(identity.expiresAt.getTime()).toBeGreaterThan(Date.now());
  });

  it("reports a reader's roles", async () => {
    const identity = await authenticator().authenticate(cast.reader.token, cast.project.id);
    expect(identity.roles).toEqual(["reader"]);
  });

  it.each([
    ["with /v3", (url: string) => url],
    ["with /v3/", (url: string) => `${url}/`],
    ["without /v3", (url: string) => url.replace(/\/v3$/, "")],
    ["without /v3, trailing slash", (url: string) => `${url.replace(/\/v3$/, "")}/`],
  ])("accepts the endpoint %s", async (_name, endpointOf) => {
    const keystone = authenticator({ endpoint: endpointOf(admin.url) });
    expect((await keystone.authenticate(cast.member.token, undefined)).userId).toBe(cast.member.id);
    expect(keystone.wwwAuthenticate).toBe(`Keystone uri="${admin.url.replace(/\/v3$/, "")}"`);
  });

  it("says where to authenticate in WWW-Authenticate", () => {
    expect(authenticator().wwwAuthenticate).toMatch(/^Keystone uri="http:\/\/127\.0\.0\.1:\d+"$/);
  });

  it("accepts domain-scoped and unscoped tokens as valid identities without a project", async () => {
    const user = await admin.createUser();
    try {
      await admin.grantDomain("default", user.id, "reader");
      const domainToken = await admin.issueToken({
        username: user.name,
        password: user.password,
        scope: { domainId: "default" },
      });
      const unscoped = await admin.issueToken({
        username: user.name,
        password: user.password,
        scope: "unscoped",
      });
      const keystone = authenticator();
      const domainIdentity = await keystone.authenticate(domainToken, cast.project.id);
      expect(domainIdentity).toMatchObject({ userId: user.id, projectId: null, roles: ["reader"] });
      const unscopedIdentity = await keystone.authenticate(unscoped, cast.project.id);
      expect(unscopedIdentity).toMatchObject({ userId: user.id, projectId: null, roles: [] });
    } finally {
      await removeQuietly(admin, { users: [user.id] });
    }
  });

  it.each([
    ["missing", undefined, "Authentication required"],
    ["empty", "", "Authentication required"],
    ["blank", "   ", "Authentication required"],
    ["garbage", "not-a-token", "invalid, expired or revoked"],
    ["fernet-shaped garbage", `gAAAAA${"x".repeat(180)}`, "invalid, expired or revoked"],
  ])("rejects a %s token with 401", async (_name, token, message) => {
    const error = await rejection(authenticator().authenticate(token, cast.project.id));
    expect(error.status).toBe(401);
    expect(error.code).toBe("unauthorized");
    expect(error.message).toContain(message);
  });

  it("rejects oversized or non-ASCII tokens without asking Keystone", async () => {
    const counter = countingFetch();
    const keystone = authenticator({ fetch: counter.fetch });
    for (const token of ["x".repeat(8193), "tök€n", "two words"]) {
      expect((await rejection(keystone.authenticate(token, undefined))).status).toBe(401);
    }
    expect(counter.calls).toHaveLength(0);
  });

  it("rejects a revoked token at once when the cache is off", async () => {
    const token = await memberToken();
    const keystone = authenticator({ cacheTtlMs: 0 });
    expect((await keystone.authenticate(token, undefined)).userId).toBe(cast.member.id);
    await admin.revokeToken(token);
    expect((await rejection(keystone.authenticate(token, undefined))).status).toBe(401);
  });

  it("keeps trusting a revoked token only until its cache entry expires", async () => {
    const clock = movableClock();
    const token = await memberToken();
    const keystone = authenticator({ cacheTtlMs: 60_000, now: clock.now });
    await keystone.authenticate(token, undefined);
    await admin.revokeToken(token);
    // Cached: Keystone is not asked (this is the documented price of the cache).
    expect((await keystone.authenticate(token, undefined)).userId).toBe(cast.member.id);
    clock.advance(61_000);
    expect((await rejection(keystone.authenticate(token, undefined))).status).toBe(401);
  });

  it("never writes the token to its logs", async () => {
    const logs = captureLogs();
    const keystone = authenticator({
      logger: logs.logger,
      endpoint: `http://127.0.0.1:${await freePort()}/v3`,
    });
    await keystone.authenticate(cast.member.token, undefined).catch(() => {});
    await keystone.warmUp();
    expect(logs.lines.length).toBeGreaterThan(0);
    expect(logs.text()).not.toContain(cast.member.token);
  });

  it("answers ping when Keystone is up", async () => {
    await expect(authenticator().ping()).resolves.toBeUndefined();
  });
});
