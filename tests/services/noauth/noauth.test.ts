import { afterAll, describe, expect, it } from "vitest";
import { authorize } from "../../../app/middleware/authorize/index.ts";
import { defaultRoleNames } from "../../../app/services/auth/types.ts";
import { createNoAuthAuthenticator } from "../../../app/services/noauth/index.ts";
import { testApp } from "../../support/app.ts";
import { freshId, openTestDatabase } from "../../support/db.ts";

const database = openTestDatabase();
afterAll(() => database.close());

function noauthApp() {
  const { app } = testApp(database, { authenticator: createNoAuthAuthenticator(defaultRoleNames) });
  app.get("/v1/:project_id/probe", authorize("read"), (c) => c.json({ identity: c.var.identity }));
  app.post("/v1/:project_id/probe", authorize("write"), (c) => c.json({ written: true }));
  return app;
}

describe("noauth", () => {
  it("makes every caller a member of the project in the URL, token or not", async () => {
    const app = noauthApp();
    const projectId = freshId();
    const read = await app.fetch(new Request(`http://x/v1/${projectId}/probe`));
    expect(read.status).toBe(200);
    const { identity } = (await read.json()) as { identity: { projectId: string; roles: string[] } };
    expect(identity.projectId).toBe(projectId);
    expect(identity.roles).toEqual(["member", "reader"]);
    const write = await app.fetch(
      new Request(`http://x/v1/${projectId}/probe`, {
        method: "POST",
        headers: { "x-auth-token": "ignored" },
      }),
    );
    expect(write.status).toBe(200);
  });

  it("uses the configured role names and grants no admin", async () => {
    const roleNames = { reader: "observer", member: "developer", admin: "operator" };
    const identity = await createNoAuthAuthenticator(roleNames).authenticate(undefined, "p");
    expect(identity.roles).toEqual(["developer", "observer"]);
    expect(identity.roles).not.toContain("operator");
  });
});
