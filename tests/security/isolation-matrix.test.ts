// Every management endpoint and both invocation routes, under every kind of caller, against one
// project's resources: the documented status, and nothing of that project in what outsiders get.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  appRow,
  type CallResult,
  type Cast,
  castFor,
  createAppFor,
  createRouteFor,
  freshAppName,
  type Harness,
  routeRows,
  startHarness,
} from "../support/management.ts";

type Caller = "none" | "garbage" | "otherMember" | "reader" | "member" | "admin";
const callers: Caller[] = ["none", "garbage", "otherMember", "reader", "member", "admin"];

let h: Harness;
let a: Cast;
let b: Cast;
let appOfA: string;
let engineAppOfA: string;
const secret = "s3cr3t-value-of-a";

beforeAll(async () => {
  h = await startHarness();
  [a, b] = await Promise.all([castFor(h), castFor(h)]);
  appOfA = await createAppFor(h, a);
  await createAppFor(h, b);
  const configured = await h.call("PUT", `/v1/${a.projectId}/apps/${appOfA}`, {
    token: a.member,
    body: { config: { SECRET: secret } },
  });
  expect(configured.status).toBe(200);
  await createRouteFor(h, a, appOfA, { path: "/private", config: { ROUTE_SECRET: secret } });
  await createRouteFor(h, a, appOfA, { path: "/public", is_public: true });
  engineAppOfA = (await appRow(h, appOfA))?.engineName ?? "";
  expect(engineAppOfA).not.toBe("");
});
afterAll(() => h?.close());

const tokenOf = (caller: Caller): string | undefined =>
  ({
    none: undefined,
    garbage: "gAAAAAB-not-a-real-fernet-token",
    otherMember: b.member,
    reader: a.reader,
    member: a.member,
    admin: h.keystone.token,
  })[caller];

/** What README's Authentication and Quotas sections document for A's project path. */
function expectedFor(caller: Caller, operation: Operation): number {
  const ok = operation.ok ?? 200;
  if (caller === "none" || caller === "garbage") return 401;
  if (caller === "otherMember") return 403;
  if (operation.kind === "admin") return caller === "admin" ? ok : 403;
  if (caller === "reader") return operation.kind === "read" ? ok : 403;
  return ok;
}

type Operation = {
  name: string;
  kind: "read" | "write" | "admin";
  /** The status of success, when not 200. */
  ok?: number;
  /** Builds the request; may create what it acts on (as A's member) so every caller meets the same state. */
  request: () => Promise<{ method: string; path: string; body?: unknown }>;
};

const appsBase = () => `/v1/${a.projectId}/apps`;
const routesBase = () => `/v1/${a.projectId}/apps/${appOfA}/routes`;
const quotasOfA = () => `/v1/${a.projectId}/quotas`;

const management: Operation[] = [
  { name: "list apps", kind: "read", request: async () => ({ method: "GET", path: appsBase() }) },
  {
    name: "create app",
    kind: "write",
    request: async () => ({ method: "POST", path: appsBase(), body: { app: { name: freshAppName() } } }),
  },
  {
    name: "show app",
    kind: "read",
    request: async () => ({ method: "GET", path: `${appsBase()}/${appOfA}` }),
  },
  {
    name: "replace app",
    kind: "write",
    request: async () => ({
      method: "PUT",
      path: `${appsBase()}/${appOfA}`,
      body: { config: { SECRET: secret } },
    }),
  },
  {
    name: "patch app",
    kind: "write",
    request: async () => ({
      method: "PATCH",
      path: `${appsBase()}/${appOfA}`,
      body: { config: { SECRET: secret } },
    }),
  },
  {
    name: "delete app",
    kind: "write",
    request: async () => ({ method: "DELETE", path: `${appsBase()}/${await createAppFor(h, a)}` }),
  },
  { name: "list routes", kind: "read", request: async () => ({ method: "GET", path: routesBase() }) },
  {
    name: "create route",
    kind: "write",
    request: async () => ({
      method: "POST",
      path: routesBase(),
      body: { route: { path: `/${freshAppName("r")}`, image: "hello" } },
    }),
  },
  {
    name: "show route",
    kind: "read",
    request: async () => ({ method: "GET", path: `${routesBase()}/private` }),
  },
  {
    name: "replace route",
    kind: "write",
    request: async () => ({
      method: "PUT",
      path: `${routesBase()}/private`,
      body: { config: { ROUTE_SECRET: secret } },
    }),
  },
  {
    name: "patch route",
    kind: "write",
    request: async () => ({ method: "PATCH", path: `${routesBase()}/private`, body: { is_public: false } }),
  },
  {
    name: "delete route",
    kind: "write",
    request: async () => {
      const path = `/${freshAppName("d")}`;
      await createRouteFor(h, a, appOfA, { path });
      return { method: "DELETE", path: `${routesBase()}${path}` };
    },
  },
  { name: "show quotas", kind: "read", request: async () => ({ method: "GET", path: quotasOfA() }) },
  {
    name: "set quotas",
    kind: "admin",
    request: async () => ({ method: "PUT", path: quotasOfA(), body: { quota_set: { apps: null } } }),
  },
  {
    name: "reset quotas",
    kind: "admin",
    ok: 204,
    request: async () => ({ method: "DELETE", path: quotasOfA() }),
  },
];

/** Body and headers of an answer, as one string to search for A's data. */
const everything = (response: CallResult) =>
  `${JSON.stringify(response.body)} ${JSON.stringify([...response.headers.entries()])}`;

function expectNothingOfA(response: CallResult, label: string) {
  const text = everything(response);
  for (const data of [appOfA, engineAppOfA, a.projectId, secret]) {
    expect(text, `${label} leaks ${data}`).not.toContain(data);
  }
}

function expectErrorShape(response: CallResult, status: number, label: string) {
  expect(response.body, label).toEqual({ error: { message: expect.any(String), code: expect.any(String) } });
  if (status === 401) {
    expect(response.body.error.code).toBe("unauthorized");
    expect(response.headers.get("www-authenticate"), label).toMatch(/^Keystone uri="/);
  }
  if (status === 403) expect(response.body.error.code).toBe("forbidden");
}

const engineCallsToA = () =>
  h.fake.requests.filter((request) => request.path.startsWith(`/r/${engineAppOfA}`));

async function expectAUntouched() {
  expect((await appRow(h, appOfA))?.config).toEqual({ SECRET: secret });
  const rows = await routeRows(h, appOfA);
  const privateRoute = rows.find((row) => row.path === "/private");
  expect(privateRoute?.isPublic).toBe(false);
  expect(privateRoute?.config).toEqual({ ROUTE_SECRET: secret });
  expect(rows.find((row) => row.path === "/public")?.isPublic).toBe(true);
}

describe("isolation matrix: management endpoints on project A's path", () => {
  for (const caller of callers) {
    it(`answers the documented status to ${caller}, revealing nothing to outsiders`, async () => {
      for (const operation of management) {
        const { method, path, body } = await operation.request();
        const response = await h.call(method, path, { token: tokenOf(caller), body });
        const expected = expectedFor(caller, operation);
        const label = `${caller} ${operation.name} (${method} ${path})`;
        expect(response.status, `${label}: ${JSON.stringify(response.body)}`).toBe(expected);
        if (expected >= 400) {
          expectErrorShape(response, expected, label);
          if (caller !== "reader") expectNothingOfA(response, label);
        }
      }
      await expectAUntouched();
    });
  }
});

describe("isolation matrix: another project's member through its own project path", () => {
  it("finds nothing of A, with the same answer as for an app that does not exist", async () => {
    const missing = `nosuch-${a.projectId}`;
    for (const operation of management) {
      const { method, path, body } = await operation.request();
      // The app of A this operation targets (appOfA, or the fresh app a delete acts on).
      const appOfAHere = /\/apps\/([^/]+)/.exec(path)?.[1];
      for (const name of [appOfAHere, missing]) {
        const collection = appOfAHere === undefined;
        // The apps collection names no app: once is enough (a second create would be a 409).
        if (collection && name === missing) continue;
        // A's project swapped for B's, and A's app name kept (a guess) or swapped for a missing one.
        const ownPath = path
          .replace(`/v1/${a.projectId}/`, `/v1/${b.projectId}/`)
          .replace(`/apps/${appOfAHere}`, `/apps/${name}`);
        const response = await h.call(method, ownPath, { token: b.member, body });
        const label = `${operation.name} via ${ownPath}`;
        if (collection) {
          // B's own collection (or quotas): B's right unless only admins may, and shows none of A.
          expect(response.status, label).toBe(operation.kind === "admin" ? 403 : (operation.ok ?? 200));
          expect(everything(response), label).not.toContain(appOfA);
          expect(everything(response), label).not.toContain(engineAppOfA);
          continue;
        }
        expect(response.status, `${label}: ${JSON.stringify(response.body)}`).toBe(404);
        expectErrorShape(response, 404, label);
        expect(JSON.stringify(response.body).replaceAll(name ?? "", "NAME")).toBe(
          JSON.stringify({ error: { message: "App NAME not found", code: "not_found" } }),
        );
        expect(everything(response)).not.toContain(engineAppOfA);
        expect(everything(response)).not.toContain(secret);
      }
    }
    await expectAUntouched();
  });
});

describe("isolation matrix: invocation", () => {
  const privateInvocationStatus: Record<Caller, number> = {
    none: 401,
    garbage: 401,
    otherMember: 403,
    reader: 403,
    member: 200,
    admin: 200,
  };

  for (const caller of callers) {
    it(`private invocation by ${caller}: ${privateInvocationStatus[caller]}`, async () => {
      h.fake.clearRequests();
      const response = await h.call("POST", `/v1/r/${a.projectId}/${appOfA}/private`, {
        token: tokenOf(caller),
        rawBody: '{"name":"Matrix"}',
      });
      const expected = privateInvocationStatus[caller];
      expect(response.status, JSON.stringify(response.body)).toBe(expected);
      if (expected === 200) {
        expect(response.body).toBe("Hello Matrix!\n");
        expect(engineCallsToA()).toHaveLength(1);
      } else {
        expectErrorShape(response, expected, caller);
        if (caller !== "reader") expectNothingOfA(response, caller);
        expect(engineCallsToA()).toHaveLength(0);
      }
    });

    it(`private invocation by ${caller} through another project's path: never reaches A's function`, async () => {
      h.fake.clearRequests();
      const response = await h.call("POST", `/v1/r/${b.projectId}/${appOfA}/private`, {
        token: tokenOf(caller),
        rawBody: "{}",
      });
      // B's path: B's member passes authorization and finds no such route; admin too (A's app
      // is not B's); A's own users are not scoped to B.
      const expected = { none: 401, garbage: 401, otherMember: 404, reader: 403, member: 403, admin: 404 }[
        caller
      ];
      expect(response.status, JSON.stringify(response.body)).toBe(expected);
      expectErrorShape(response, expected, caller);
      expect(everything(response)).not.toContain(engineAppOfA);
      expect(everything(response)).not.toContain(secret);
      expect(engineCallsToA()).toHaveLength(0);
    });

    it(`public invocation by ${caller}: the public route runs, the private one never reaches the engine`, async () => {
      h.fake.clearRequests();
      const publicRoute = await h.call("POST", `/r/${appOfA}/public`, {
        token: tokenOf(caller),
        rawBody: '{"name":"Public"}',
      });
      expect(publicRoute.status, JSON.stringify(publicRoute.body)).toBe(200);
      expect(publicRoute.body).toBe("Hello Public!\n");
      expect(engineCallsToA()).toHaveLength(1);

      h.fake.clearRequests();
      const privateRoute = await h.call("POST", `/r/${appOfA}/private`, {
        token: tokenOf(caller),
        rawBody: '{"name":"Public"}',
      });
      expect(privateRoute.status, JSON.stringify(privateRoute.body)).toBe(403);
      expectErrorShape(privateRoute, 403, caller);
      expect(everything(privateRoute)).not.toContain(secret);
      expect(everything(privateRoute)).not.toContain(engineAppOfA);
      expect(engineCallsToA()).toHaveLength(0);
    });
  }
});
