import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  appRow,
  type Cast,
  castFor,
  createAppFor,
  freshAppName,
  type Harness,
  startHarness,
} from "../../support/management.ts";

let h: Harness;
let a: Cast;
let b: Cast;
let appOfA: string;

beforeAll(async () => {
  h = await startHarness();
  [a, b] = await Promise.all([castFor(h), castFor(h)]);
  appOfA = await createAppFor(h, a);
  await h.call("PUT", `/v1/${a.projectId}/apps/${appOfA}`, {
    token: a.member,
    body: { config: { SECRET: "a" } },
  });
});
afterAll(() => h?.close());

async function expectAppOfAUntouched() {
  const row = await appRow(h, appOfA);
  expect(row?.projectId).toBe(a.projectId);
  expect(row?.config).toEqual({ SECRET: "a" });
}

describe("apps: authentication", () => {
  it("answers 401 without a token or with a bad one, for every method", async () => {
    for (const token of [undefined, "not-a-token", `${a.member}x`]) {
      for (const [method, path, body] of [
        ["GET", `/v1/${a.projectId}/apps`, undefined],
        ["POST", `/v1/${a.projectId}/apps`, { app: { name: freshAppName() } }],
        ["GET", `/v1/${a.projectId}/apps/${appOfA}`, undefined],
        ["PUT", `/v1/${a.projectId}/apps/${appOfA}`, { config: {} }],
        ["PATCH", `/v1/${a.projectId}/apps/${appOfA}`, { config: {} }],
        ["DELETE", `/v1/${a.projectId}/apps/${appOfA}`, undefined],
      ] as const) {
        const response = await h.call(method, path, { token, body });
        expect(response.status, `${method} ${path} token=${token ? "bad" : "none"}`).toBe(401);
        expect(response.body.error.code).toBe("unauthorized");
      }
    }
    await expectAppOfAUntouched();
  });

  it("authenticates before looking at the body (401 beats 415 and 400)", async () => {
    const response = await h.call("POST", `/v1/${a.projectId}/apps`, {
      rawBody: "{",
      contentType: "text/plain",
    });
    expect(response.status).toBe(401);
  });
});

describe("apps: roles", () => {
  it("lets a reader read but not write", async () => {
    expect((await h.call("GET", `/v1/${a.projectId}/apps`, { token: a.reader })).status).toBe(200);
    expect((await h.call("GET", `/v1/${a.projectId}/apps/${appOfA}`, { token: a.reader })).status).toBe(200);
    const name = freshAppName();
    for (const [method, path, body] of [
      ["POST", `/v1/${a.projectId}/apps`, { app: { name } }],
      ["PUT", `/v1/${a.projectId}/apps/${appOfA}`, { config: {} }],
      ["PATCH", `/v1/${a.projectId}/apps/${appOfA}`, { config: { SECRET: null } }],
      ["DELETE", `/v1/${a.projectId}/apps/${appOfA}`, undefined],
    ] as const) {
      const response = await h.call(method, path, { token: a.reader, body });
      expect(response.status, method).toBe(403);
      expect(response.body.error.message).toBe("Role member is required");
    }
    expect(await appRow(h, `${name}-${a.projectId}`)).toBeUndefined();
    await expectAppOfAUntouched();
  });

  it("refuses unscoped and domain-scoped tokens", async () => {
    const user = await h.keystone.createUser();
    await h.keystone.grant(a.projectId, user.id, "member");
    const unscoped = await h.keystone.issueToken({
      username: user.name,
      password: user.password,
      scope: "unscoped",
    });
    expect((await h.call("GET", `/v1/${a.projectId}/apps`, { token: unscoped })).status).toBe(403);
    await h.keystone.grantDomain("default", user.id, "member");
    const domainScoped = await h.keystone.issueToken({
      username: user.name,
      password: user.password,
      scope: { domainId: "default" },
    });
    const response = await h.call("POST", `/v1/${a.projectId}/apps`, {
      token: domainScoped,
      body: { app: { name: freshAppName() } },
    });
    expect(response.status).toBe(403);
  });
});

describe("apps: isolation between projects", () => {
  it("never lists another project's apps", async () => {
    const own = await h.call("GET", `/v1/${b.projectId}/apps`, { token: b.member });
    expect(own.status).toBe(200);
    expect(JSON.stringify(own.body)).not.toContain(appOfA);
    expect(JSON.stringify(own.body)).not.toContain(a.projectId);
  });

  it("refuses B's token on A's project path, revealing nothing", async () => {
    for (const [method, path, body] of [
      ["GET", `/v1/${a.projectId}/apps`, undefined],
      ["GET", `/v1/${a.projectId}/apps/${appOfA}`, undefined],
      ["GET", `/v1/${a.projectId}/apps/no-such-app`, undefined],
      ["POST", `/v1/${a.projectId}/apps`, { app: { name: freshAppName() } }],
      ["PUT", `/v1/${a.projectId}/apps/${appOfA}`, { config: {} }],
      ["PATCH", `/v1/${a.projectId}/apps/${appOfA}`, { config: {} }],
      ["DELETE", `/v1/${a.projectId}/apps/${appOfA}`, undefined],
    ] as const) {
      const response = await h.call(method, path, { token: b.member, body });
      expect(response.status, `${method} ${path}`).toBe(403);
      expect(response.body.error.message).toBe("The token is not scoped to this project");
    }
    await expectAppOfAUntouched();
  });

  it("finds none of A's apps through B's own project path, by name or by guessing", async () => {
    const shortName = appOfA.slice(0, appOfA.length - a.projectId.length - 1);
    for (const guess of [appOfA, shortName, `${shortName}-${b.projectId}`]) {
      for (const [method, body] of [
        ["GET", undefined],
        ["PUT", { config: {} }],
        ["PATCH", { config: { SECRET: "b" } }],
        ["DELETE", undefined],
      ] as const) {
        const response = await h.call(method, `/v1/${b.projectId}/apps/${guess}`, { token: b.member, body });
        expect(response.status, `${method} ${guess}`).toBe(404);
        expect(response.body.error.message).toBe(`App ${guess} not found`);
      }
    }
    await expectAppOfAUntouched();
  });

  it("gives the same chosen name in two projects two different public names", async () => {
    const name = freshAppName();
    const inA = await createAppFor(h, a, name);
    const inB = await createAppFor(h, b, name);
    expect(inA).toBe(`${name}-${a.projectId}`);
    expect(inB).toBe(`${name}-${b.projectId}`);
    expect((await appRow(h, inA))?.engineName).not.toBe((await appRow(h, inB))?.engineName);
  });
});

describe("apps: hostile input is refused and never executed", () => {
  it("keeps the apps table intact after SQL-looking names in body and URL", async () => {
    const hostile = [
      "x' OR '1'='1",
      "x`; DROP TABLE apps; --",
      'x"); DELETE FROM apps; --',
      "x\\",
      "x%",
      "x_%",
    ];
    for (const name of hostile) {
      const created = await h.call("POST", `/v1/${a.projectId}/apps`, {
        token: a.member,
        body: { app: { name } },
      });
      expect(created.status, name).toBe(400);
      const shown = await h.call("GET", `/v1/${a.projectId}/apps/${encodeURIComponent(name)}`, {
        token: a.reader,
      });
      expect(shown.status, name).toBe(400);
    }
    const marker = await h.call(
      "GET",
      `/v1/${a.projectId}/apps?marker=${encodeURIComponent("' OR 1=1 --")}`,
      {
        token: a.reader,
      },
    );
    expect(marker.status).toBe(200);
    await expectAppOfAUntouched();
  });

  it("treats a percent-encoded name as the plain name it decodes to, nothing more", async () => {
    const encoded = [...appOfA].map((char) => `%${char.charCodeAt(0).toString(16)}`).join("");
    const response = await h.call("GET", `/v1/${a.projectId}/apps/${encoded}`, { token: a.reader });
    expect(response.status).toBe(200);
    expect(response.body.app.name).toBe(appOfA);
  });
});
