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

describe("routes: max_body_bytes and forward_auth_headers", () => {
  it("defaults to null and false on create, in the answer and in MySQL", async () => {
    const app = await createAppFor(h, cast);
    const route = await createRouteFor(h, cast, app, { path: "/plain" });
    expect(route.max_body_bytes).toBeNull();
    expect(route.forward_auth_headers).toBe(false);
    expect(await rowOf(app, "/plain")).toMatchObject({ maxBodyBytes: null, forwardAuthHeaders: false });
  });

  it("stores both on create, accepts the CLI's string booleans and the 4 GiB bound, and keeps them off the engine", async () => {
    const app = await createAppFor(h, cast);
    h.fake.clearRequests();
    const route = await createRouteFor(h, cast, app, {
      path: "/opts",
      max_body_bytes: 4294967296,
      forward_auth_headers: "true",
    });
    expect(route.max_body_bytes).toBe(4294967296);
    expect(route.forward_auth_headers).toBe(true);
    expect(await rowOf(app, "/opts")).toMatchObject({ maxBodyBytes: 4294967296, forwardAuthHeaders: true });
    const sent = JSON.stringify(h.fake.requests);
    expect(sent).not.toContain("max_body_bytes");
    expect(sent).not.toContain("forward_auth_headers");
    const shown = await h.call("GET", `${routesOf(app)}/opts`, { token: cast.reader });
    expect(shown.body.route).toMatchObject({ max_body_bytes: 4294967296, forward_auth_headers: true });
    const minimal = await createRouteFor(h, cast, app, {
      path: "/one",
      max_body_bytes: 1,
      forward_auth_headers: false,
    });
    expect(minimal).toMatchObject({ max_body_bytes: 1, forward_auth_headers: false });
  });

  it("PUT and PATCH change them without an engine call; null goes back to the server default", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/edit" });
    const engineBefore = await h.fake.routes((await appRow(h, app))?.engineName ?? "");
    h.fake.clearRequests();

    const put = await h.call("PUT", `${routesOf(app)}/edit`, {
      token: cast.member,
      body: { max_body_bytes: 2048, forward_auth_headers: true },
    });
    expect(put.status).toBe(200);
    expect(put.body.route).toMatchObject({ max_body_bytes: 2048, forward_auth_headers: true });
    expect(await rowOf(app, "/edit")).toMatchObject({ maxBodyBytes: 2048, forwardAuthHeaders: true });

    const patch = await h.call("PATCH", `${routesOf(app)}/edit`, {
      token: cast.member,
      body: { route: { max_body_bytes: null, forward_auth_headers: "False" } },
    });
    expect(patch.status).toBe(200);
    expect(patch.body.route).toMatchObject({ max_body_bytes: null, forward_auth_headers: false });
    expect(await rowOf(app, "/edit")).toMatchObject({ maxBodyBytes: null, forwardAuthHeaders: false });

    const patchOne = await h.call("PATCH", `${routesOf(app)}/edit`, {
      token: cast.member,
      body: { max_body_bytes: 5000 },
    });
    expect(patchOne.body.route).toMatchObject({ max_body_bytes: 5000, forward_auth_headers: false });

    const putNull = await h.call("PUT", `${routesOf(app)}/edit`, {
      token: cast.member,
      body: { max_body_bytes: null },
    });
    expect(putNull.status).toBe(200);
    expect(putNull.body.route.max_body_bytes).toBeNull();

    // Picasso-only fields: the engine was neither called nor changed.
    expect(h.fake.requests.filter((request) => request.method !== "GET")).toEqual([]);
    expect(await h.fake.routes((await appRow(h, app))?.engineName ?? "")).toEqual(engineBefore);
  });

  it("an update giving other fields leaves both as they were", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/keep", max_body_bytes: 777, forward_auth_headers: true });
    const response = await h.call("PATCH", `${routesOf(app)}/keep`, {
      token: cast.member,
      body: { memory: 256 },
    });
    expect(response.status).toBe(200);
    expect(response.body.route).toMatchObject({
      memory: 256,
      max_body_bytes: 777,
      forward_auth_headers: true,
    });
  });

  it("a refused value changes nothing", async () => {
    const app = await createAppFor(h, cast);
    await createRouteFor(h, cast, app, { path: "/same", max_body_bytes: 100 });
    const response = await h.call("PUT", `${routesOf(app)}/same`, {
      token: cast.member,
      body: { max_body_bytes: 4294967297, forward_auth_headers: true },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(/max_body_bytes: must be between 1 and 4294967296/);
    expect(await rowOf(app, "/same")).toMatchObject({ maxBodyBytes: 100, forwardAuthHeaders: false });
  });
});
