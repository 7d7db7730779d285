// SIGTERM right after a client aborted an invocation: the process exits at once, not after
// --shutdown-timeout. Node's fetch opens a fresh connection to the server just after an abort and
// sends nothing on it; Node's HTTP server does not count such a connection as idle.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postJsonOk, startNoAuthServe } from "../support/cli.ts";
import { testDbUri } from "../support/db.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "../support/ironfunctions/server.ts";

let fake: FakeIronFunctions;
beforeAll(async () => {
  fake = await startFakeIronFunctions();
});
afterAll(() => fake?.stop());

type Scenario = {
  name: string;
  route: Record<string, unknown>;
  /** The invocation's path on Picasso. */
  url: (project: string, app: string) => string;
  /** The function hangs before answering; otherwise the client aborts mid-body. */
  hang: boolean;
};

const scenarios: Scenario[] = [
  {
    name: "a public invocation aborted before the function answered",
    route: { path: "/fn", image: "hello", is_public: true },
    url: (_project, app) => `/r/${app}/fn`,
    hang: true,
  },
  {
    name: "a private invocation aborted before the function answered",
    route: { path: "/fn", image: "hello" },
    url: (project, app) => `/v1/r/${project}/${app}/fn`,
    hang: true,
  },
  {
    name: "an async invocation (the portable path) aborted before the engine answered",
    route: { path: "/fn", image: "hello", is_public: true, type: "async" },
    url: (_project, app) => `/r/${app}/fn`,
    hang: true,
  },
  {
    name: "an invocation aborted while the function's output streams",
    route: { path: "/fn", image: "bytes", is_public: true, config: { BYTES: "500000000" } },
    url: (_project, app) => `/r/${app}/fn`,
    hang: false,
  },
];

describe("picasso-api serve: SIGTERM after a client aborted an invocation", () => {
  it.each(scenarios)(
    "exits well before the grace period after $name",
    async (scenario) => {
      const { server, base } = await startNoAuthServe({
        functionsUrl: fake.apiUrl,
        args: ["--shutdown-timeout", "20"],
        env: { PICASSO_DB: testDbUri() },
      });

      const project = `abort${randomBytes(4).toString("hex")}`;
      const post = (path: string, body: unknown) => postJsonOk(base, path, body);
      const created = await post(`/v1/${project}/apps`, {
        app: { name: `a${randomBytes(5).toString("hex")}` },
      });
      const appName = created.app?.name ?? "";
      await post(`/v1/${project}/apps/${appName}/routes`, { route: scenario.route });
      const path = scenario.url(project, appName);

      fake.clearRequests();
      if (scenario.hang) fake.setFault({ kind: "hang", scope: "r" });
      const client = new AbortController();
      const call = fetch(`${base}${path}`, { method: "POST", body: "{}", signal: client.signal });
      if (scenario.hang) {
        await expect.poll(() => fake.requests.some((request) => request.path.startsWith("/r/"))).toBe(true);
        client.abort();
        await expect(call).rejects.toThrow();
      } else {
        const reader = (await call).body?.getReader();
        expect((await reader?.read())?.done).toBe(false);
        client.abort();
        await expect(reader?.read()).rejects.toThrow();
      }
      fake.setFault(null);
      // The access log line is written once Picasso has finished with the invocation.
      await expect.poll(() => server.output().includes(`path=${path} `), { timeout: 10_000 }).toBe(true);
      if (scenario.hang) expect(server.output()).toContain(`path=${path} status=499`);

      const signalled = Date.now();
      server.child.kill("SIGTERM");
      expect(await server.exited).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalled).toBeLessThan(10_000);
      expect(server.output()).not.toContain("shutdown grace period over");
    },
    60_000,
  );
});
