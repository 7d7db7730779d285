import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectQuotas } from "../../../db/schema.ts";
import { type Cast, castFor, type Harness, startHarness } from "../../support/management.ts";

let h: Harness;
let a: Cast;
let b: Cast;

beforeAll(async () => {
  h = await startHarness();
  [a, b] = await Promise.all([castFor(h), castFor(h)]);
  const set = await h.call("PUT", `/v1/${a.projectId}/quotas`, {
    token: h.keystone.token,
    body: { quota_set: { apps: 3 } },
  });
  expect(set.status).toBe(200);
});
afterAll(() => h?.close());

const quotasOfA = () => `/v1/${a.projectId}/quotas`;

async function expectQuotasOfAUntouched() {
  const [row] = await h.database.db
    .select()
    .from(projectQuotas)
    .where(eq(projectQuotas.projectId, a.projectId));
  expect(row).toMatchObject({ apps: 3, routesPerApp: null, concurrentInvocations: null });
}

describe("quotas: who may read and change them", () => {
  it("lets the project's reader and member read", async () => {
    for (const token of [a.reader, a.member]) {
      const response = await h.call("GET", quotasOfA(), { token });
      expect(response.status).toBe(200);
      expect(response.body.quota_set.apps.limit).toBe(3);
    }
  });

  it("refuses PUT and DELETE to the project's reader and member: admin only", async () => {
    for (const token of [a.reader, a.member]) {
      const put = await h.call("PUT", quotasOfA(), { token, body: { quota_set: { apps: 1000 } } });
      expect(put.status).toBe(403);
      expect(put.body).toEqual({ error: { code: "forbidden", message: "Role admin is required" } });
      const reset = await h.call("DELETE", quotasOfA(), { token });
      expect(reset.status).toBe(403);
      expect(reset.body.error.message).toBe("Role admin is required");
    }
    await expectQuotasOfAUntouched();
  });

  it("refuses another project's member on A's path with the usual 403, revealing nothing", async () => {
    for (const [method, body] of [
      ["GET", undefined],
      ["PUT", { quota_set: { apps: 1000 } }],
      ["DELETE", undefined],
    ] as const) {
      const response = await h.call(method, quotasOfA(), { token: b.member, body });
      expect(response.status, method).toBe(403);
      expect(response.body).toEqual({
        error: { code: "forbidden", message: "The token is not scoped to this project" },
      });
    }
    await expectQuotasOfAUntouched();
  });

  it("shows another project's member only their own project's quotas", async () => {
    const own = await h.call("GET", `/v1/${b.projectId}/quotas`, { token: b.member });
    expect(own.status).toBe(200);
    expect(own.body.quota_set.project_id).toBe(b.projectId);
    expect(own.body.quota_set.apps.limit).toBe(100);
    expect(JSON.stringify(own.body)).not.toContain(a.projectId);
  });

  it("answers 401 without a token or with a bad one, and checks the token before the body", async () => {
    for (const token of [undefined, "not-a-token"]) {
      for (const method of ["GET", "PUT", "DELETE"]) {
        const response = await h.call(method, quotasOfA(), {
          token,
          body: method === "PUT" ? { quota_set: { apps: 1000 } } : undefined,
        });
        expect(response.status, `${method} ${token ?? "none"}`).toBe(401);
        expect(response.headers.get("www-authenticate")).toMatch(/^Keystone uri="/);
      }
    }
    const unparsed = await h.call("PUT", quotasOfA(), { rawBody: "{", contentType: "text/plain" });
    expect(unparsed.status).toBe(401);
    // Authorization comes before the body too: a member's bad body is a 403, not a 400.
    const member = await h.call("PUT", quotasOfA(), { token: a.member, body: { quota_set: { cores: 1 } } });
    expect(member.status).toBe(403);
    await expectQuotasOfAUntouched();
  });

  it("refuses an admin role on a token that is not project-scoped", async () => {
    const user = await h.keystone.createUser();
    await h.keystone.grantDomain("default", user.id, "admin");
    const domainAdmin = await h.keystone.issueToken({
      username: user.name,
      password: user.password,
      scope: { domainId: "default" },
    });
    const response = await h.call("PUT", quotasOfA(), {
      token: domainAdmin,
      body: { quota_set: { apps: 1000 } },
    });
    expect(response.status).toBe(403);
    await expectQuotasOfAUntouched();
  });

  it("lets a project-scoped admin change any project's quotas", async () => {
    const response = await h.call("PUT", `/v1/${b.projectId}/quotas`, {
      token: h.keystone.token,
      body: { quota_set: { routes_per_app: 4 } },
    });
    expect(response.status).toBe(200);
    expect(response.body.quota_set.routes_per_app.limit).toBe(4);
    expect((await h.call("DELETE", `/v1/${b.projectId}/quotas`, { token: h.keystone.token })).status).toBe(
      204,
    );
  });
});
