// The route fields rate_limit and rate_limit_burst through the management API: stored, shown,
// changed without an engine call, validated with 400s that change nothing, and applied to the
// next invocation on this instance at once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  appRow,
  type Cast,
  castFor,
  createAppFor,
  createRouteFor,
  type Harness,
  routeRows,
  startHarness,
} from "../../support/management.ts";

let h: Harness;
let cast: Cast;

beforeAll(async () => {
  h = await startHarness();
  cast = await castFor(h);
});
afterAll(() => h?.close());

const routesOf = (app: string) => `/v1/${cast.projectId}/apps/${app}/routes`;
const rowOf = async (app: string, path: string) => (await routeRows(h, app)).find((row) => row.path === path);

describe("routes: rate_limit and rate_limit_burst", () => {
  it("default to null (the server's defaults), in the answer and in MySQL", async () => {
    const app = await createAppFor(h, cast);
    const route = await createRouteFor(h, cast, app, { path: "/plain" });
    expect(route).toMatchObject({ rate_limit: null, rate_limit_burst: null });
    expect(await rowOf(app, "/plain")).toMatchObject({ rateLimit: null, rateLimitBurst: null });
  });

  it("are stored on create at their bounds and never sent to the engine", async () => {
    const app = await createAppFor(h, cast);
    h.fake.clearRequests();
    const high = await createRouteFor(h, cast, app, {
      path: "/high",
      rate_limit: 100_000,
      rate_limit_burst: 1_000_000,
    });
    expect(high).toMatchObject({ rate_limit: 100_000, rate_limit_burst: 1_000_000 });
    const low = await createRouteFor(h, cast, app, { path: "/low", rate_limit: 1, rate_limit_burst: 0 });
    expect(low).toMatchObject({ rate_limit: 1, rate_limit_burst: 0 });
    expect(await rowOf(app, "/low")).toMatchObject({ rateLimit: 1, rateLimitBurst: 0 });
    const sent = JSON.stringify(h.fake.requests);
    expect(sent).not.toContain("rate_limit");
    const shown = await h.call("GET", `${routesOf(app)}/high`, { token: cast.reader });
    expect(shown.body.route).toMatchObject({ rate_limit: 100_000, rate_limit_burst: 1_000_000 });
  });

  it("PUT and PATCH change them without an engine call; null goes back to the default; other updates keep them", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/edit" });
    const engineBefore = await h.fake.routes((await appRow(h, app))?.engineName ?? "");
    h.fake.clearRequests();

    const put = await h.call("PUT", `${routesOf(app)}/edit`, {
      token: cast.member,
      body: { rate_limit: 5, rate_limit_burst: 7 },
    });
    expect(put.status).toBe(200);
    expect(put.body.route).toMatchObject({ rate_limit: 5, rate_limit_burst: 7 });

    const patch = await h.call("PATCH", `${routesOf(app)}/edit`, {
      token: cast.member,
      body: { route: { rate_limit_burst: null } },
    });
    expect(patch.body.route).toMatchObject({ rate_limit: 5, rate_limit_burst: null });
    expect(await rowOf(app, "/edit")).toMatchObject({ rateLimit: 5, rateLimitBurst: null });

    const unrelated = await h.call("PATCH", `${routesOf(app)}/edit`, {
      token: cast.member,
      body: { description: "still limited" },
    });
    expect(unrelated.body.route).toMatchObject({ rate_limit: 5, rate_limit_burst: null });

    const putNull = await h.call("PUT", `${routesOf(app)}/edit`, {
      token: cast.member,
      body: { rate_limit: null },
    });
    expect(putNull.body.route).toMatchObject({ rate_limit: null, rate_limit_burst: null });

    expect(h.fake.requests.filter((request) => request.method !== "GET")).toEqual([]);
    expect(await h.fake.routes((await appRow(h, app))?.engineName ?? "")).toEqual(engineBefore);
  });

  it("refuses values out of range or of the wrong type with a 400 naming the field, changing nothing", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/same", rate_limit: 3, rate_limit_burst: 4 });
    const cases = [
      [{ rate_limit: 0 }, /rate_limit: must be between 1 and 100000/],
      [{ rate_limit: 100_001 }, /rate_limit: must be between 1 and 100000/],
      [{ rate_limit: -1 }, /rate_limit: must be between 1 and 100000/],
      [{ rate_limit: 2.5 }, /rate_limit: must be an integer/],
      [{ rate_limit: "10" }, /rate_limit: must be an integer or null/],
      [{ rate_limit_burst: -1 }, /rate_limit_burst: must be between 0 and 1000000/],
      [{ rate_limit_burst: 1_000_001 }, /rate_limit_burst: must be between 0 and 1000000/],
      [{ rate_limit_burst: true }, /rate_limit_burst: must be an integer or null/],
    ] as const;
    for (const [body, message] of cases) {
      for (const method of ["PUT", "PATCH"]) {
        const response = await h.call(method, `${routesOf(app)}/same`, {
          token: cast.member,
          body: { ...body, description: "changed" },
        });
        expect(response.status, `${method} ${JSON.stringify(body)}`).toBe(400);
        expect(response.body.error).toMatchObject({
          code: "validation_failed",
          message: expect.stringMatching(message),
        });
      }
      const created = await h.call("POST", routesOf(app), {
        token: cast.member,
        body: { route: { path: "/refused", image: "hello", ...body } },
      });
      expect(created.status, `POST ${JSON.stringify(body)}`).toBe(400);
      expect(created.body.error.message).toMatch(message);
    }
    expect(await rowOf(app, "/same")).toMatchObject({ rateLimit: 3, rateLimitBurst: 4, description: "" });
    expect(await rowOf(app, "/refused")).toBeUndefined();
  });

  it("a change applies to the next invocation on this instance", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/hello" });
    const invoke = () =>
      h.app.fetch(
        new Request(`http://picasso.test/v1/r/${cast.projectId}/${app}/hello`, {
          headers: { "X-Auth-Token": cast.member },
        }),
      );
    // No server default in this harness: unlimited, and no X-RateLimit-* headers.
    for (let i = 0; i < 3; i += 1) {
      const response = await invoke();
      expect(response.status).toBe(200);
      expect(response.headers.get("x-ratelimit-limit")).toBeNull();
      await response.arrayBuffer();
    }
    const patched = await h.call("PATCH", `${routesOf(app)}/hello`, {
      token: cast.member,
      body: { rate_limit: 1, rate_limit_burst: 0 },
    });
    expect(patched.status).toBe(200);
    // Sent together, so all fall in one second.
    const answers = await Promise.all([invoke(), invoke(), invoke()]);
    const statuses = answers.map((response) => response.status).sort();
    expect(statuses).toEqual([200, 429, 429]);
    for (const response of answers) {
      expect(response.headers.get("x-ratelimit-limit")).toBe("1");
      if (response.status === 429) expect((await response.json()).error.code).toBe("rate_limited");
      else await response.arrayBuffer();
    }
  });
});
