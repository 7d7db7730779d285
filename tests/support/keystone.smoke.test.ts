// Smoke test of the Keystone helper against the real Keystone from scripts/keystone.sh: if this
// fails, every auth test would fail for reasons unrelated to Picasso.
import { beforeAll, describe, expect, it } from "vitest";
import { KeystoneAdmin, type ProjectWithUsers } from "./keystone.ts";

describe("Keystone test helper", () => {
  let admin: KeystoneAdmin;
  let cast: ProjectWithUsers;

  beforeAll(async () => {
    admin = await KeystoneAdmin.connect();
    cast = await admin.createProjectWithUsers();
  });

  it("lets a member validate its own token, with project and implied roles", async () => {
    const { status, body } = await admin.validateToken(cast.member.token, cast.member.token);
    expect(status).toBe(200);
    expect(body?.token.project?.id).toBe(cast.project.id);
    expect(body?.token.user.id).toBe(cast.member.id);
    // Role order varies between validations: compare as sets.
    expect(new Set(body?.token.roles?.map((r) => r.name))).toEqual(new Set(["member", "reader"]));
  });

  it("gives a reader only the reader role", async () => {
    const { status, body } = await admin.validateToken(cast.reader.token, cast.reader.token);
    expect(status).toBe(200);
    expect(body?.token.roles?.map((r) => r.name)).toEqual(["reader"]);
  });

  it("forbids a non-admin to validate someone else's token", async () => {
    const { status } = await admin.validateToken(cast.member.token, cast.reader.token);
    expect(status).toBe(403);
  });

  it("reports a revoked token as not found", async () => {
    const token = await admin.issueToken({
      username: cast.member.name,
      password: cast.member.password,
      scope: { projectId: cast.project.id },
    });
    expect((await admin.validateToken(token, token)).status).toBe(200);
    await admin.revokeToken(token);
    expect((await admin.validateToken(token)).status).toBe(404);
    // A revoked token cannot authenticate its own validation either.
    expect((await admin.validateToken(token, token)).status).toBe(401);
  });

  it("issues unscoped and domain-scoped tokens", async () => {
    const user = await admin.createUser();
    const unscoped = await admin.issueToken({
      username: user.name,
      password: user.password,
      scope: "unscoped",
    });
    const unscopedBody = (await admin.validateToken(unscoped)).body;
    expect(unscopedBody?.token.project).toBeUndefined();
    expect(unscopedBody?.token.roles ?? []).toEqual([]);

    await admin.grantDomain("default", user.id, "reader");
    const domainToken = await admin.issueToken({
      username: user.name,
      password: user.password,
      scope: { domainId: "default" },
    });
    const domainBody = (await admin.validateToken(domainToken)).body;
    expect(domainBody?.token.domain?.id).toBe("default");
    expect(domainBody?.token.roles?.map((r) => r.name)).toEqual(["reader"]);
    await admin.deleteUser(user.id);
  });

  it("creates the service role on demand and is idempotent", async () => {
    const id = await admin.ensureRole("service");
    expect(await admin.ensureRole("service")).toBe(id);
    expect(await admin.ensureRole("member")).toMatch(/^[0-9a-f]{32}$/);
  });

  it("issues a token from an application credential", async () => {
    const credential = await admin.createAppCredential(cast.member, cast.project.id);
    const token = await admin.issueAppCredentialToken(credential);
    const { body } = await admin.validateToken(token);
    expect(body?.token.project?.id).toBe(cast.project.id);
    expect(body?.token.methods).toContain("application_credential");
  });

  it("rejects a wrong password with a KeystoneError carrying the status", async () => {
    await expect(
      admin.issueToken({ username: cast.member.name, password: "wrong", scope: "unscoped" }),
    ).rejects.toMatchObject({ name: "KeystoneError", status: 401 });
  });

  it("cleans up", async () => {
    await admin.deleteUser(cast.member.id);
    await admin.deleteUser(cast.reader.id);
    await admin.deleteProject(cast.project.id);
    await admin.deleteProject(cast.project.id);
  });
});
