import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { exampleFunctionsDir, functionBaseEnv } from "../../app/config.ts";
import { defaultRoleNames } from "../../app/services/auth/types.ts";
import { createLocalEngine } from "../../app/services/engine/local/index.ts";
import { createNoAuthAuthenticator } from "../../app/services/noauth/index.ts";
import { testApp } from "../support/app.ts";
import { freshId, openTestDatabase } from "../support/db.ts";
import { recordingLogger } from "../support/logger.ts";
import { eventually } from "../support/processes.ts";

// examples/openstack-alarms/README.md, step by step: management calls as the README's curl
// commands make them (noauth, as under `picasso-api dev`), then what Aodh's notifier sends.
const notification = readFileSync(
  new URL("../../examples/openstack-alarms/notification.json", import.meta.url),
  "utf8",
);
const database = openTestDatabase();
const log = recordingLogger();
const engine = createLocalEngine({ directory: exampleFunctionsDir, logger: log, baseEnv: functionBaseEnv() });
const { app } = testApp(database, {
  engine,
  authenticator: createNoAuthAuthenticator(defaultRoleNames),
  logger: log,
});
afterAll(async () => {
  await engine.close();
  await database.close();
});

const json = { "Content-Type": "application/json" };

describe("examples/openstack-alarms", () => {
  it("runs the alarm handler in the background when Aodh posts a notification to the public async route", async () => {
    const project = freshId("p");
    const created = await app.request(`/v1/${project}/apps`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ app: { name: "alarm-notifier" } }),
    });
    expect(created.status).toBe(200);
    const appName = ((await created.json()) as { app: { name: string } }).app.name;
    expect(appName).toBe(`alarm-notifier-${project}`);
    const route = await app.request(`/v1/${project}/apps/${appName}/routes`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({
        route: { path: "/alarm", image: "aodh-alarm", type: "async", is_public: true },
      }),
    });
    expect(route.status).toBe(200);

    // What Aodh's rest notifier sends: JSON, its own request id, no token.
    const fired = await app.request(`/r/${appName}/alarm`, {
      method: "POST",
      headers: { ...json, "x-openstack-request-id": "req-6b1e9a34-4f39-4a57-8f4b-6c1a1f6f1f0e" },
      body: notification,
    });
    expect(fired.status).toBe(202);
    const { call_id: callId } = (await fired.json()) as { call_id: string };

    const finished = () =>
      log.entries.find((entry) => entry.message === "async call finished" && entry.fields.call_id === callId);
    await eventually(() => finished() !== undefined, "the alarm handler ran");
    expect(finished()?.fields).toMatchObject({
      exit_code: 0,
      output:
        "alarm cpu_high (f3460bad-2b5c-4c2f-b6e0-e82973e6ec71) insufficient data -> alarm: " +
        "Transition to alarm due to 1 samples outside threshold, most recent: 36.7",
    });
  });

  it.each([["../../bin/sh"], ["no-such-function"]])(
    "refuses a route with image %j (outside or missing from the functions directory) with 400 naming image",
    async (image) => {
      const project = freshId("p");
      const created = await app.request(`/v1/${project}/apps`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ app: { name: "escape" } }),
      });
      const appName = ((await created.json()) as { app: { name: string } }).app.name;
      const refused = await app.request(`/v1/${project}/apps/${appName}/routes`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ route: { path: "/x", image, is_public: true } }),
      });
      expect(refused.status).toBe(400);
      const body = (await refused.json()) as { error: { message: string; code: string } };
      expect(body.error.message).toMatch(/image/);
      const listed = await app.request(`/v1/${project}/apps/${appName}/routes`);
      expect(((await listed.json()) as { routes: unknown[] }).routes).toEqual([]);
    },
  );
});
