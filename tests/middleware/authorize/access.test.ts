import { describe, expect, it } from "vitest";
import { type Action, checkAccess, methodAction } from "../../../app/middleware/authorize/index.ts";
import { defaultRoleNames } from "../../../app/services/auth/types.ts";
import type { Identity } from "../../../app/types.ts";

const project = "0123456789abcdef0123456789abcdef";
const elsewhere = "fedcba9876543210fedcba9876543210";

const identity = (projectId: string | null, roles: string[]): Identity => ({
  userId: "u",
  projectId,
  roles,
  expiresAt: new Date(Date.now() + 60_000),
});

const allowed = (who: Identity, target: string | undefined, action: Action) =>
  checkAccess(who, target, action, defaultRoleNames) === null;

describe("checkAccess", () => {
  it.each([
    // [scope, roles, target project, read allowed, write allowed]
    [project, ["reader"], project, true, false],
    [project, ["member"], project, true, true],
    [project, ["member", "reader"], project, true, true],
    [project, [], project, false, false],
    [project, ["service"], project, false, false],
    [project, ["member"], elsewhere, false, false],
    [project, ["reader"], elsewhere, false, false],
    [project, ["admin"], elsewhere, true, true],
    [project, ["admin"], project, true, true],
    [null, ["admin"], project, false, false],
    [null, ["member"], project, false, false],
    [null, [], project, false, false],
    [project, ["member"], undefined, false, false],
  ] as const)("scope %s with %o on %s: read %s, write %s", (scope, roles, target, read, write) => {
    const who = identity(scope, [...roles]);
    expect(allowed(who, target, "read")).toBe(read);
    expect(allowed(who, target, "write")).toBe(write);
  });

  it.each([
    // [scope, roles, target project, admin action allowed]
    [project, ["admin"], project, true],
    [project, ["admin"], elsewhere, true],
    [project, ["Admin"], elsewhere, true],
    [project, ["member", "reader"], project, false],
    [project, ["reader"], project, false],
    [project, ["member"], elsewhere, false],
    [null, ["admin"], project, false],
  ] as const)("admin action: scope %s with %o on %s: %s", (scope, roles, target, admin) => {
    expect(allowed(identity(scope, [...roles]), target, "admin")).toBe(admin);
  });

  it("tells a project's member that admin is needed, and an outsider that the scope is wrong", () => {
    expect(checkAccess(identity(project, ["member"]), project, "admin", defaultRoleNames)).toBe(
      "Role admin is required",
    );
    expect(checkAccess(identity(elsewhere, ["member"]), project, "admin", defaultRoleNames)).toBe(
      "The token is not scoped to this project",
    );
  });

  it("compares role names case-insensitively, as oslo.policy does", () => {
    expect(allowed(identity(project, ["Member"]), project, "write")).toBe(true);
    expect(
      checkAccess(identity(project, ["reader"]), project, "read", { ...defaultRoleNames, reader: "READER" }),
    ).toBeNull();
  });

  it("maps GET and HEAD to read, everything else to write", () => {
    expect(["GET", "HEAD"].map(methodAction)).toEqual(["read", "read"]);
    expect(["POST", "PUT", "PATCH", "DELETE"].map(methodAction)).toEqual([
      "write",
      "write",
      "write",
      "write",
    ]);
  });
});
