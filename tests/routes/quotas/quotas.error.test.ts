import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apps, projectQuotas } from "../../../db/schema.ts";
import {
  type Cast,
  castFor,
  createAppFor,
  createRouteFor,
  freshAppName,
  type Harness,
  routeRows,
  startHarness,
} from "../../support/management.ts";

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

const quotasOf = (projectId: string) => `/v1/${projectId}/quotas`;

async function setQuotas(projectId: string, quotaSet: Record<string, number | null>) {
  const response = await h.call("PUT", quotasOf(projectId), {
    token: h.keystone.token,
    body: { quota_set: quotaSet },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
}

const appsOfProject = (projectId: string) =>
  h.database.db.select().from(apps).where(eq(apps.projectId, projectId));

describe("quotas: exceeding a count quota", () => {
  it("refuses the app past the limit with 403 naming the quota, creating nothing anywhere", async () => {
    const cast = await castFor(h);
    await setQuotas(cast.projectId, { apps: 2 });
    await createAppFor(h, cast);
    await createAppFor(h, cast);
    const engineAppsBefore = h.fake.apps().length;
    h.fake.clearRequests();
    const name = freshAppName();
    const response = await h.call("POST", `/v1/${cast.projectId}/apps`, {
      token: cast.member,
      body: { app: { name } },
    });
    expect(response.status).toBe(403);
    expect(response.body).toEqual({
      error: {
        code: "quota_exceeded",
        message: "Quota exceeded for apps: requested 1, but already used 2 of 2 apps",
      },
    });
    expect(await appsOfProject(cast.projectId)).toHaveLength(2);
    expect(h.fake.requests).toEqual([]);
    expect(h.fake.apps()).toHaveLength(engineAppsBefore);
  });

  it("refuses the route past the per-app limit, counting each app on its own", async () => {
    const cast = await castFor(h);
    await setQuotas(cast.projectId, { routes_per_app: 1 });
    const full = await createAppFor(h, cast);
    const other = await createAppFor(h, cast);
    await createRouteFor(h, cast, full, { path: "/first" });
    h.fake.clearRequests();
    const response = await h.call("POST", `/v1/${cast.projectId}/apps/${full}/routes`, {
      token: cast.member,
      body: { route: { path: "/second", image: "hello" } },
    });
    expect(response.status).toBe(403);
    expect(response.body).toEqual({
      error: {
        code: "quota_exceeded",
        message: "Quota exceeded for routes_per_app: requested 1, but already used 1 of 1 routes",
      },
    });
    expect((await routeRows(h, full)).map((row) => row.path)).toEqual(["/first"]);
    expect(h.fake.requests).toEqual([]);
    // Another app of the same project still has room.
    await createRouteFor(h, cast, other, { path: "/second" });
  });

  it("0 allows nothing", async () => {
    const cast = await castFor(h);
    await setQuotas(cast.projectId, { apps: 0 });
    const response = await h.call("POST", `/v1/${cast.projectId}/apps`, {
      token: cast.member,
      body: { app: { name: freshAppName() } },
    });
    expect(response.status).toBe(403);
    expect(response.body.error.message).toBe(
      "Quota exceeded for apps: requested 1, but already used 0 of 0 apps",
    );
    expect(await appsOfProject(cast.projectId)).toEqual([]);
  });
});

describe("quotas: concurrent creates at the edge never overshoot", () => {
  const limit = 5;
  const parallel = 20;

  it(`apps: ${parallel} simultaneous creates against a quota of ${limit}`, async () => {
    const cast = await castFor(h);
    await setQuotas(cast.projectId, { apps: limit });
    const responses = await Promise.all(
      Array.from({ length: parallel }, () =>
        h.call("POST", `/v1/${cast.projectId}/apps`, {
          token: cast.member,
          body: { app: { name: freshAppName() } },
        }),
      ),
    );
    const statuses = responses.map((response) => response.status).sort();
    expect(
      statuses.filter((status) => status === 200),
      JSON.stringify(responses.map((r) => r.body)),
    ).toHaveLength(limit);
    expect(statuses.filter((status) => status === 403)).toHaveLength(parallel - limit);
    for (const response of responses.filter((r) => r.status === 403)) {
      expect(response.body.error.code).toBe("quota_exceeded");
    }
    const rows = await appsOfProject(cast.projectId);
    expect(rows).toHaveLength(limit);
    const engineNames = new Set(h.fake.apps().map((app) => app.name));
    for (const row of rows) expect(engineNames.has(row.engineName)).toBe(true);
  });

  it("the first creates of a project, before it has a quota row, all pass the lock", async () => {
    const cast = await castFor(h);
    const responses = await Promise.all(
      Array.from({ length: parallel }, () =>
        h.call("POST", `/v1/${cast.projectId}/apps`, {
          token: cast.member,
          body: { app: { name: freshAppName() } },
        }),
      ),
    );
    expect(
      responses.map((response) => response.status),
      JSON.stringify(responses.map((r) => r.body)),
    ).toEqual(Array(parallel).fill(200));
    expect(await appsOfProject(cast.projectId)).toHaveLength(parallel);
  });

  it(`routes: ${parallel} simultaneous creates in one app against a quota of ${limit}`, async () => {
    const cast = await castFor(h);
    await setQuotas(cast.projectId, { routes_per_app: limit });
    const app = await createAppFor(h, cast);
    const responses = await Promise.all(
      Array.from({ length: parallel }, (_, i) =>
        h.call("POST", `/v1/${cast.projectId}/apps/${app}/routes`, {
          token: cast.member,
          body: { route: { path: `/r${i}`, image: "hello" } },
        }),
      ),
    );
    const created = responses.filter((response) => response.status === 200);
    expect(created, JSON.stringify(responses.map((r) => r.body))).toHaveLength(limit);
    expect(responses.filter((response) => response.status === 403)).toHaveLength(parallel - limit);
    const rows = await routeRows(h, app);
    expect(rows).toHaveLength(limit);
    const engineApp = rows[0]
      ? (await h.database.db.select().from(apps).where(eq(apps.id, rows[0].appId)))[0]
      : null;
    expect(
      h.fake
        .routes(engineApp?.engineName ?? "")
        .map((route) => route.path)
        .sort(),
    ).toEqual(rows.map((row) => row.path).sort());
  });
});

describe("quotas: invalid updates are refused with 400 and change nothing", () => {
  let cast: Cast;
  beforeAll(async () => {
    cast = await castFor(h);
    await setQuotas(cast.projectId, { apps: 9 });
  });

  const cases: [string, unknown, RegExp][] = [
    ["an unknown field", { quota_set: { cores: 5 } }, /cores/],
    ["an unknown field beside a known one", { quota_set: { apps: 5, instances: 1 } }, /instances/],
    ["a string", { quota_set: { apps: "5" } }, /apps: must be an integer from -1 to 1000000, or null/],
    ["a fraction", { quota_set: { apps: 1.5 } }, /apps: must be an integer/],
    ["below -1", { quota_set: { apps: -2 } }, /apps: must be an integer from -1/],
    ["above the maximum", { quota_set: { routes_per_app: 1_000_001 } }, /routes_per_app/],
    ["a boolean", { quota_set: { concurrent_invocations: true } }, /concurrent_invocations/],
    [
      "nothing to change",
      { quota_set: {} },
      /name at least one of apps, routes_per_app, concurrent_invocations/,
    ],
    ["an empty body", {}, /name at least one/],
    ["an array", [], /json/],
  ];
  for (const [label, body, message] of cases) {
    it(label, async () => {
      const response = await h.call("PUT", quotasOf(cast.projectId), { token: h.keystone.token, body });
      expect(response.status, JSON.stringify(response.body)).toBe(400);
      expect(response.body.error.code).toBe("validation_failed");
      expect(response.body.error.message).toMatch(message);
      const [row] = await h.database.db
        .select()
        .from(projectQuotas)
        .where(eq(projectQuotas.projectId, cast.projectId));
      expect(row).toMatchObject({ apps: 9, routesPerApp: null, concurrentInvocations: null });
    });
  }

  it("malformed JSON, another media type, a body too large", async () => {
    const path = quotasOf(cast.projectId);
    const token = h.keystone.token;
    const malformed = await h.call("PUT", path, { token, rawBody: '{"quota_set": {' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe("malformed_json");
    const text = await h.call("PUT", path, { token, rawBody: "apps=5", contentType: "text/plain" });
    expect(text.status).toBe(415);
    const large = await h.call("PUT", path, {
      token,
      body: { quota_set: { apps: 5 }, pad: "x".repeat(10_000) },
    });
    expect(large.status).toBe(413);
    const shown = await h.call("GET", path, { token: cast.reader });
    expect(shown.body.quota_set.apps.limit).toBe(9);
  });

  it("a project id that cannot be one", async () => {
    const response = await h.call("GET", "/v1/bad%20id/quotas", { token: h.keystone.token });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(/project_id/);
  });
});
