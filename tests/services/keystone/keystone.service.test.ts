// Validation with Picasso's own service credentials (keystonemiddleware's usual set-up), against
// the real Keystone: a service user with the `service` role may validate anyone's token.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../../app/lib/logger.ts";
import {
  KeystoneAuthenticator,
  type KeystoneAuthenticatorOptions,
  type ServiceCredentials,
} from "../../../app/services/keystone/index.ts";
import {
  KeystoneAdmin,
  type KeystoneProject,
  type KeystoneUser,
  type ProjectWithUsers,
} from "../../support/keystone.ts";
import {
  countingFetch,
  movableClock,
  removeQuietly,
  testKeystoneTimeoutMs,
} from "../../support/keystone-calls.ts";
import { captureLogs } from "../../support/logs.ts";

let admin: KeystoneAdmin;
let cast: ProjectWithUsers;
let serviceProject: KeystoneProject;
let serviceUser: KeystoneUser;
let memberOnlyUser: KeystoneUser;
const authenticators: KeystoneAuthenticator[] = [];

const passwordCredentials = (user: KeystoneUser, password = user.password): ServiceCredentials => ({
  kind: "password",
  username: user.name,
  password,
  userDomainName: "Default",
  projectName: serviceProject.name,
  projectDomainName: "Default",
});

function build(serviceCredentials: ServiceCredentials, options: Partial<KeystoneAuthenticatorOptions> = {}) {
  const counter = countingFetch();
  const keystone = new KeystoneAuthenticator({
    endpoint: admin.url,
    timeoutMs: testKeystoneTimeoutMs,
    logger: silentLogger,
    serviceCredentials,
    fetch: counter.fetch,
    ...options,
  });
  authenticators.push(keystone);
  return { keystone, counter };
}

const freshMemberToken = () =>
  admin.issueToken({
    username: cast.member.name,
    password: cast.member.password,
    scope: { projectId: cast.project.id },
  });

beforeAll(async () => {
  admin = await KeystoneAdmin.connect();
  cast = await admin.createProjectWithUsers();
  serviceProject = await admin.createProject();
  [serviceUser, memberOnlyUser] = await Promise.all([admin.createUser(), admin.createUser()]);
  await Promise.all([
    admin.grant(serviceProject.id, serviceUser.id, "service"),
    admin.grant(serviceProject.id, memberOnlyUser.id, "member"),
  ]);
});

afterAll(async () => {
  await Promise.all(authenticators.map((created) => created.close()));
  await removeQuietly(admin, {
    users: [cast.member, cast.reader, serviceUser, memberOnlyUser].map((user) => user.id),
    projects: [cast.project.id, serviceProject.id],
  });
});

describe("Keystone authenticator with service credentials", () => {
  it("validates other users' tokens with one service token", async () => {
    const { keystone, counter } = build(passwordCredentials(serviceUser));
    expect(keystone.mode).toBe("service");
    const member = await keystone.authenticate(cast.member.token, cast.project.id);
    expect(member).toMatchObject({ userId: cast.member.id, projectId: cast.project.id });
    const reader = await keystone.authenticate(cast.reader.token, cast.project.id);
    expect(reader.roles).toEqual(["reader"]);
    expect(counter.issues()).toBe(1);
    expect(counter.validations()).toBe(2);
    // The validations authenticated as Picasso, not as the token being checked.
    const validations = counter.calls.filter((call) => call.method === "GET");
    expect(validations.every((call) => call.authToken !== cast.member.token)).toBe(true);
  });

  it("rejects garbage and revoked tokens with 401", async () => {
    const { keystone } = build(passwordCredentials(serviceUser), { cacheTtlMs: 0 });
    await expect(keystone.authenticate("garbage", undefined)).rejects.toMatchObject({ status: 401 });
    const token = await freshMemberToken();
    await keystone.authenticate(token, undefined);
    await admin.revokeToken(token);
    await expect(keystone.authenticate(token, undefined)).rejects.toMatchObject({ status: 401 });
  });

  it("renews its service token once when Keystone refuses it", async () => {
    const { keystone, counter } = build(passwordCredentials(serviceUser));
    await keystone.authenticate(cast.member.token, undefined);
    const serviceToken = counter.calls.find((call) => call.method === "GET")?.authToken;
    expect(serviceToken).toBeTruthy();
    await admin.revokeToken(serviceToken as string);
    expect((await keystone.authenticate(cast.reader.token, undefined)).userId).toBe(cast.reader.id);
    expect(counter.issues()).toBe(2);
  });

  it("renews its service token shortly before it expires", async () => {
    const clock = movableClock();
    const { keystone, counter } = build(passwordCredentials(serviceUser), { now: clock.now });
    await keystone.authenticate(cast.member.token, undefined);
    const subject = await freshMemberToken();
    const lifetime = (await keystone.authenticate(subject, undefined)).expiresAt.getTime() - Date.now();
    expect(counter.issues()).toBe(1);
    // A minute before the (same-length) service token's expiry: inside the renewal margin.
    clock.advance(lifetime - 60_000);
    const later = await freshMemberToken();
    expect((await keystone.authenticate(later, undefined)).userId).toBe(cast.member.id);
    expect(counter.issues()).toBe(2);
  });

  it("obtains one service token for many concurrent first requests", async () => {
    const { keystone, counter } = build(passwordCredentials(serviceUser));
    const tokens = await Promise.all(Array.from({ length: 5 }, () => freshMemberToken()));
    await Promise.all(tokens.map((token) => keystone.authenticate(token, undefined)));
    expect(counter.issues()).toBe(1);
  });

  it("validates with an application credential", async () => {
    const credential = await admin.createAppCredential(serviceUser, serviceProject.id);
    const { keystone, counter } = build({
      kind: "application_credential",
      id: credential.id,
      secret: credential.secret,
    });
    expect((await keystone.authenticate(cast.member.token, undefined)).projectId).toBe(cast.project.id);
    expect(counter.issues()).toBe(1);
  });

  it("answers 503, not 401, when its own password is wrong, and says why in the log", async () => {
    const logs = captureLogs();
    const wrong = "definitely-not-the-password";
    const { keystone, counter } = build(passwordCredentials(serviceUser, wrong), { logger: logs.logger });
    // The shared SQLite Keystone now and then answers 500 ("database is locked") under parallel
    // load; a failed service login is not remembered, so ask again until Keystone says 401.
    for (let attempt = 0; attempt < 3 && !logs.text().includes("refused Picasso's"); attempt++) {
      await expect(keystone.authenticate(cast.member.token, undefined)).rejects.toMatchObject({
        status: 503,
        code: "service_unavailable",
      });
    }
    expect(logs.text()).toContain("refused Picasso's service credentials");
    expect(counter.validations()).toBe(0);
    expect(logs.text()).not.toContain(wrong);
    expect(logs.text()).not.toContain(cast.member.token);
  });

  it("answers 503 when the service user lacks the service role", async () => {
    const logs = captureLogs();
    const { keystone } = build(passwordCredentials(memberOnlyUser), { logger: logs.logger });
    await expect(keystone.authenticate(cast.reader.token, undefined)).rejects.toMatchObject({ status: 503 });
    expect(logs.text()).toContain("the service user needs the service or admin role");
  });

  it("warms up by obtaining its service token", async () => {
    const { keystone, counter } = build(passwordCredentials(serviceUser));
    await keystone.warmUp();
    expect(counter.issues()).toBe(1);
    await keystone.authenticate(cast.member.token, undefined);
    expect(counter.issues()).toBe(1);
  });
});
