import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  appRow,
  castFor,
  createAppFor,
  createRouteFor,
  freshAppName,
  type Harness,
  startHarness,
} from "../../support/management.ts";

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

const quotasOf = (projectId: string) => `/v1/${projectId}/quotas`;
const admin = () => h.keystone.token;

async function setQuotas(projectId: string, quotaSet: Record<string, number | null>) {
  const response = await h.call("PUT", quotasOf(projectId), {
    token: admin(),
    body: { quota_set: quotaSet },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body;
}

describe("quotas: reading and setting", () => {
  it("shows the configured defaults and the project's usage", async () => {
    const fresh = await castFor(h);
    const empty = await h.call("GET", quotasOf(fresh.projectId), { token: fresh.reader });
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({
      quota_set: {
        project_id: fresh.projectId,
        apps: { limit: 100, in_use: 0 },
        routes_per_app: { limit: 100, in_use: 0 },
        concurrent_invocations: { limit: 100, in_use: 0 },
      },
    });

    const first = await createAppFor(h, fresh);
    const second = await createAppFor(h, fresh);
    await createRouteFor(h, fresh, first, { path: "/a" });
    await createRouteFor(h, fresh, second, { path: "/a" });
    await createRouteFor(h, fresh, second, { path: "/b" });
    const used = await h.call("GET", quotasOf(fresh.projectId), { token: fresh.member });
    expect(used.body.quota_set.apps).toEqual({ limit: 100, in_use: 2 });
    // The app with the most routes is what the per-app quota is closest to.
    expect(used.body.quota_set.routes_per_app).toEqual({ limit: 100, in_use: 2 });
  });

  it("changes only the quotas given; null goes back to the default; DELETE resets them all", async () => {
    const fresh = await castFor(h);
    const changed = await setQuotas(fresh.projectId, { apps: 7, concurrent_invocations: -1 });
    expect(changed.quota_set).toMatchObject({
      apps: { limit: 7 },
      routes_per_app: { limit: 100 },
      concurrent_invocations: { limit: -1 },
    });
    const again = await setQuotas(fresh.projectId, { routes_per_app: 3, apps: null });
    expect(again.quota_set).toMatchObject({
      apps: { limit: 100 },
      routes_per_app: { limit: 3 },
      concurrent_invocations: { limit: -1 },
    });
    const bare = await h.call("PUT", quotasOf(fresh.projectId), { token: admin(), body: { apps: 0 } });
    expect(bare.status).toBe(200);
    expect(bare.body.quota_set.apps.limit).toBe(0);

    const reset = await h.call("DELETE", quotasOf(fresh.projectId), { token: admin() });
    expect(reset.status).toBe(204);
    expect(reset.body).toBe("");
    const shown = await h.call("GET", quotasOf(fresh.projectId), { token: fresh.reader });
    expect(shown.body.quota_set).toMatchObject({
      apps: { limit: 100 },
      routes_per_app: { limit: 100 },
      concurrent_invocations: { limit: 100 },
    });
    // Resetting a project that never had quotas set is no error either.
    const other = await castFor(h);
    expect((await h.call("DELETE", quotasOf(other.projectId), { token: admin() })).status).toBe(204);
  });

  it("lets an admin raise a quota that refused a create, and the create then succeeds", async () => {
    const fresh = await castFor(h);
    await setQuotas(fresh.projectId, { apps: 1 });
    await createAppFor(h, fresh);
    const name = freshAppName();
    const refused = await h.call("POST", `/v1/${fresh.projectId}/apps`, {
      token: fresh.member,
      body: { app: { name } },
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("quota_exceeded");

    await setQuotas(fresh.projectId, { apps: 2 });
    const created = await h.call("POST", `/v1/${fresh.projectId}/apps`, {
      token: fresh.member,
      body: { app: { name } },
    });
    expect(created.status).toBe(200);
    expect(await appRow(h, `${name}-${fresh.projectId}`)).toBeDefined();
  });

  it("accepts a limit below current usage: what exists stays, new creates are refused", async () => {
    const fresh = await castFor(h);
    const app = await createAppFor(h, fresh);
    await createAppFor(h, fresh);
    await createRouteFor(h, fresh, app, { path: "/one" });
    await createRouteFor(h, fresh, app, { path: "/two" });
    const lowered = await setQuotas(fresh.projectId, { apps: 1, routes_per_app: 1 });
    expect(lowered.quota_set.apps).toEqual({ limit: 1, in_use: 2 });
    expect(lowered.quota_set.routes_per_app).toEqual({ limit: 1, in_use: 2 });
    expect(
      (await h.call("GET", `/v1/${fresh.projectId}/apps`, { token: fresh.member })).body.apps,
    ).toHaveLength(2);
    const route = await h.call("POST", `/v1/${fresh.projectId}/apps/${app}/routes`, {
      token: fresh.member,
      body: { route: { path: "/three", image: "hello" } },
    });
    expect(route.status).toBe(403);
    expect(route.body.error.message).toBe(
      "Quota exceeded for routes_per_app: requested 1, but already used 2 of 1 routes",
    );
    // Deleting still works, and frees room below the lowered limit once usage drops under it.
    expect(
      (await h.call("DELETE", `/v1/${fresh.projectId}/apps/${app}/routes/two`, { token: fresh.member }))
        .status,
    ).toBe(200);
    expect(
      (await h.call("DELETE", `/v1/${fresh.projectId}/apps/${app}/routes/one`, { token: fresh.member }))
        .status,
    ).toBe(200);
    await createRouteFor(h, fresh, app, { path: "/again" });
  });

  it("-1 lifts a limit", async () => {
    const fresh = await castFor(h);
    await setQuotas(fresh.projectId, { apps: -1 });
    await createAppFor(h, fresh);
    await createAppFor(h, fresh);
    const shown = await h.call("GET", quotasOf(fresh.projectId), { token: fresh.member });
    expect(shown.body.quota_set.apps).toEqual({ limit: -1, in_use: 2 });
  });
});
