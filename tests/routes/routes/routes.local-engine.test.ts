import { afterAll, describe, expect, it } from "vitest";
import { functionBaseEnv } from "../../../app/config.ts";
import { silentLogger } from "../../../app/lib/logger.ts";
import { defaultRoleNames } from "../../../app/services/auth/types.ts";
import { createLocalEngine } from "../../../app/services/engine/local/index.ts";
import { createNoAuthAuthenticator } from "../../../app/services/noauth/index.ts";
import { fixtures } from "../../services/engine/local/support.ts";
import { testApp } from "../../support/app.ts";
import { freshId, openTestDatabase } from "../../support/db.ts";
import { eventually } from "../../support/processes.ts";

// The management API over the local runner: what the runner refuses is a 400 naming the field,
// and nothing is stored; what it accepts runs with the config management stored.
const database = openTestDatabase();
const engine = createLocalEngine({ directory: fixtures, logger: silentLogger, baseEnv: functionBaseEnv() });
const { app } = testApp(database, { engine, authenticator: createNoAuthAuthenticator(defaultRoleNames) });
afterAll(async () => {
  await engine.close();
  await database.close();
});

async function call(method: string, path: string, body?: unknown) {
  const response = await app.request(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: tests assert response bodies field by field
  return { status: response.status, body: (await response.json()) as any };
}

async function newApp(config: Record<string, string> = {}) {
  const project = freshId("p");
  const created = await call("POST", `/v1/${project}/apps`, { app: { name: "local", config } });
  expect(created.status).toBe(200);
  return { project, name: created.body.app.name as string };
}

describe("routes API with the local runner", () => {
  it.each([
    [{ image: "no-such-function" }, /^Invalid json: image: "no-such-function" names no function/],
    [{ image: "team/../env" }, /image/],
    [{ image: "env", format: "http" }, /^Invalid json: format: "http"/],
  ])("refuses to create a route with %o: 400 naming the field, nothing stored", async (fields, message) => {
    const { project, name } = await newApp();
    const refused = await call("POST", `/v1/${project}/apps/${name}/routes`, {
      route: { path: "/x", ...fields },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe("validation_failed");
    expect(refused.body.error.message).toMatch(message);
    expect((await call("GET", `/v1/${project}/apps/${name}/routes`)).body.routes).toEqual([]);
  });

  it("refuses to change a route's image to one it cannot run, keeping the route as it was", async () => {
    const { project, name } = await newApp();
    const routeUrl = `/v1/${project}/apps/${name}/routes/fn`;
    expect(
      (await call("POST", `/v1/${project}/apps/${name}/routes`, { route: { path: "/fn", image: "env" } }))
        .status,
    ).toBe(200);
    for (const method of ["PUT", "PATCH"]) {
      const refused = await call(method, routeUrl, { image: "picasso/no-such-function:1.0" });
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toMatch(/image: "picasso\/no-such-function:1\.0" names no function/);
      expect((await call("GET", routeUrl)).body.route.image).toBe("env");
    }
  });

  it("runs the route with the app and route config management stored, also after changes", async () => {
    const { project, name } = await newApp({ GREETING: "hello" });
    await call("POST", `/v1/${project}/apps/${name}/routes`, {
      route: { path: "/fn", image: "picasso/env:latest", config: { TARGET: "world" } },
    });
    const invoke = async () => {
      const response = await app.request(`/v1/r/${project}/${name}/fn`, { method: "POST", body: "in" });
      expect(response.status).toBe(200);
      return ((await response.json()) as { env: Record<string, string> }).env;
    };
    expect(await invoke()).toMatchObject({
      GREETING: "hello",
      TARGET: "world",
      REQUEST_URL: `http://localhost/v1/r/${project}/${name}/fn`,
    });
    expect((await call("PUT", `/v1/${project}/apps/${name}`, { config: { GREETING: "hi" } })).status).toBe(
      200,
    );
    expect(
      (await call("PATCH", `/v1/${project}/apps/${name}/routes/fn`, { config: { TARGET: "moon" } })).status,
    ).toBe(200);
    expect(await invoke()).toMatchObject({ GREETING: "hi", TARGET: "moon" });
  });

  it("tells the function its URL on --public-url when Picasso sits behind a proxy", async () => {
    const { project, name } = await newApp();
    await call("POST", `/v1/${project}/apps/${name}/routes`, {
      route: { path: "/fn", image: "env", is_public: true },
    });
    const proxied = testApp(database, { engine, publicUrl: "https://faas.example.org/" }).app;
    const response = await proxied.request(`/r/${name}/fn?q=%2F`, { method: "POST" });
    const { env } = (await response.json()) as { env: Record<string, string> };
    expect(env.REQUEST_URL).toBe(`https://faas.example.org/r/${name}/fn?q=%2F`);
  });

  it.each([["sync"], ["async"]])(
    "answers 413 when a %s call's streamed body passes the limit, and no process is left",
    async (type) => {
      const { project, name } = await newApp();
      await call("POST", `/v1/${project}/apps/${name}/routes`, {
        route: { path: "/fn", image: "hold", type, is_public: true },
      });
      const small = testApp(database, { engine, invocation: { maxBodyBytes: 16 } }).app;
      const chunks = ["0123456789", "0123456789", "0123456789"];
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          const next = chunks.shift();
          if (next === undefined) controller.close();
          else controller.enqueue(new TextEncoder().encode(next));
        },
      });
      const response = await small.request(`/r/${name}/fn`, {
        method: "POST",
        body,
        duplex: "half",
      } as RequestInit);
      expect(response.status).toBe(413);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
      await eventually(() => engine.activity().processes === 0, "no function process left");
    },
  );
});
