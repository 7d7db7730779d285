import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Cast,
  castFor,
  createAppFor,
  createRouteFor,
  type Harness,
  routeRows,
  startHarness,
} from "../../support/management.ts";

let h: Harness;
let a: Cast;
let b: Cast;
let appOfA: string;
let appOfB: string;

beforeAll(async () => {
  h = await startHarness();
  [a, b] = await Promise.all([castFor(h), castFor(h)]);
  appOfA = await createAppFor(h, a);
  appOfB = await createAppFor(h, b);
  await createRouteFor(h, a, appOfA, { path: "/private", config: { SECRET: "a" } });
  await createRouteFor(h, a, appOfA, { path: "/public", is_public: true });
});
afterAll(() => h?.close());

async function expectRoutesOfAUntouched() {
  const rows = await routeRows(h, appOfA);
  expect(rows.map((row) => row.path).sort()).toEqual(["/private", "/public"]);
  expect(rows.find((row) => row.path === "/private")?.config).toEqual({ SECRET: "a" });
  expect(rows.find((row) => row.path === "/public")?.isPublic).toBe(true);
}

const operations = (base: string) =>
  [
    ["GET", `${base}/routes`, undefined],
    ["POST", `${base}/routes`, { route: { path: "/intruder", image: "hello" } }],
    ["GET", `${base}/routes/private`, undefined],
    ["GET", `${base}/routes/public`, undefined],
    ["PUT", `${base}/routes/private`, { config: {} }],
    ["PATCH", `${base}/routes/private`, { is_public: true }],
    ["DELETE", `${base}/routes/private`, undefined],
  ] as const;

describe("routes: authentication and roles", () => {
  it("answers 401 without a valid token, public route or not", async () => {
    for (const [method, path, body] of operations(`/v1/${a.projectId}/apps/${appOfA}`)) {
      for (const token of [undefined, "garbage"]) {
        const response = await h.call(method, path, { token, body });
        expect(response.status, `${method} ${path}`).toBe(401);
      }
    }
    await expectRoutesOfAUntouched();
  });

  it("lets a reader read but not write", async () => {
    for (const [method, path, body] of operations(`/v1/${a.projectId}/apps/${appOfA}`)) {
      const response = await h.call(method, path, { token: a.reader, body });
      expect(response.status, `${method} ${path}`).toBe(method === "GET" ? 200 : 403);
    }
    await expectRoutesOfAUntouched();
  });
});

describe("routes: isolation between projects", () => {
  it("refuses B's token on A's project path", async () => {
    for (const [method, path, body] of operations(`/v1/${a.projectId}/apps/${appOfA}`)) {
      const response = await h.call(method, path, { token: b.member, body });
      expect(response.status, `${method} ${path}`).toBe(403);
    }
    await expectRoutesOfAUntouched();
  });

  it("finds no route of A through B's project, naming A's app or guessing", async () => {
    for (const guess of [appOfA, appOfA.replace(a.projectId, b.projectId)]) {
      for (const [method, path, body] of operations(`/v1/${b.projectId}/apps/${guess}`)) {
        const response = await h.call(method, path, { token: b.member, body });
        expect(response.status, `${method} ${path}`).toBe(404);
        expect(response.body.error.message).toBe(`App ${guess} not found`);
      }
    }
    await expectRoutesOfAUntouched();
  });

  it("shows B only B's routes, even with the same path as A's", async () => {
    await createRouteFor(h, b, appOfB, { path: "/private" });
    const list = await h.call("GET", `/v1/${b.projectId}/apps/${appOfB}/routes`, { token: b.reader });
    expect(list.body.routes.map((route: { path: string }) => route.path)).toEqual(["/private"]);
    expect(JSON.stringify(list.body)).not.toContain(appOfA);
    expect(JSON.stringify(list.body)).not.toContain("SECRET");
    await expectRoutesOfAUntouched();
  });

  it("lets an admin manage A's routes", async () => {
    const token = h.keystone.token;
    const base = `/v1/${a.projectId}/apps/${appOfA}/routes`;
    expect((await h.call("GET", base, { token })).status).toBe(200);
    const created = await h.call("POST", base, {
      token,
      body: { route: { path: "/by-admin", image: "hello" } },
    });
    expect(created.status).toBe(200);
    expect((await h.call("DELETE", `${base}/by-admin`, { token })).status).toBe(200);
    await expectRoutesOfAUntouched();
  });
});
