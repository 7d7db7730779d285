import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { functionBaseEnv } from "../../../../app/config.ts";
import { silentLogger } from "../../../../app/lib/logger.ts";
import { listen, type RunningServer } from "../../../../app/node/server.ts";
import { createLocalEngine } from "../../../../app/services/engine/local/index.ts";
import type { EngineRoute } from "../../../../app/services/engine/types.ts";
import { apps, routes } from "../../../../db/schema.ts";
import { testApp } from "../../../support/app.ts";
import { freshId, openTestDatabase } from "../../../support/db.ts";
import { eventually, groupMembers, isRunning } from "../../../support/processes.ts";
import { fixtures, testRoute } from "./support.ts";

// Through the whole stack over a real socket: the gateway, @hono/node-server and the runner.
const database = openTestDatabase();
const engine = createLocalEngine({ directory: fixtures, logger: silentLogger, baseEnv: functionBaseEnv() });
const scratch = mkdtempSync(join(tmpdir(), "picasso-local-http-"));
let server: RunningServer;
let base: string;

beforeAll(async () => {
  const { app, services } = testApp(database, { engine });
  server = await listen({
    fetch: app.fetch,
    host: "127.0.0.1",
    port: 0,
    logger: silentLogger,
    lifecycle: services.lifecycle,
  });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server.shutdown(1000);
  await engine.close();
  await database.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** A public app with one route, written straight to the database as management would. */
async function publicRoute(route: EngineRoute): Promise<string> {
  const appId = freshId();
  const projectId = freshId("p");
  const name = `app-${freshId().slice(0, 12)}`;
  await database.db.insert(apps).values({
    id: appId,
    projectId,
    name,
    engineName: `pc-${appId.slice(0, 27)}`,
    description: "",
    config: { GREETING: "hi" },
  });
  await database.db.insert(routes).values({
    id: freshId(),
    appId,
    projectId,
    isPublic: true,
    description: "",
    ...route,
  });
  return `${base}/r/${name}${route.path}`;
}

describe("local runner behind the gateway", () => {
  it("streams the function's output to the client before the function ends", async () => {
    const url = await publicRoute(testRoute("stream"));
    let close!: () => void;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("input"));
        close = () => controller.close();
      },
    });
    const response = await fetch(url, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    const pid = Number(/started (\d+)/.exec(first)?.[1]);
    expect(isRunning(pid)).toBe(true);
    close();
    let rest = "";
    for (let next = await reader.read(); !next.done; next = await reader.read())
      rest += new TextDecoder().decode(next.value);
    expect(rest).toBe("finished\n");
  });

  it("kills the function and its group when the client disconnects mid-stream", async () => {
    const url = await publicRoute(testRoute("loud-sleeper"));
    const client = new AbortController();
    const response = await fetch(url, { method: "POST", signal: client.signal });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const [pid, grandchild] = new TextDecoder()
      .decode((await reader.read()).value)
      .trim()
      .split(" ")
      .map(Number);
    expect(isRunning(pid as number)).toBe(true);
    client.abort();
    await eventually(
      () => !isRunning(pid as number) && !isRunning(grandchild as number),
      "both processes gone",
    );
    await eventually(() => groupMembers(pid as number).length === 0, "the process group is empty");
  });

  it("kills the function when the client disconnects before any output", async () => {
    const pidFile = join(scratch, `pids-${randomUUID()}`);
    const url = await publicRoute(testRoute("silent-sleeper", { config: { PID_FILE: pidFile } }));
    const client = new AbortController();
    const pending = fetch(url, { method: "POST", signal: client.signal }).catch((error: unknown) => error);
    await eventually(
      () => existsSync(pidFile) && readFileSync(pidFile, "utf8").includes(" "),
      "pids written",
    );
    client.abort();
    await pending;
    const [pid, grandchild] = readFileSync(pidFile, "utf8").trim().split(" ").map(Number);
    await eventually(
      () => !isRunning(pid as number) && !isRunning(grandchild as number),
      "both processes gone",
    );
    await eventually(() => engine.activity().processes === 0, "the runner has no process left");
  });

  it("answers a failing function with the API's error shape", async () => {
    const url = await publicRoute(testRoute("fail"));
    const response = await fetch(url, { method: "POST" });
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: { message: "exit code 3", code: "function_error" } });
  });

  it("answers an async route 202 with the call id in body and X-Call-Id", async () => {
    const recordFile = join(scratch, `record-${randomUUID()}`);
    const url = await publicRoute(
      testRoute("record", { type: "async", config: { RECORD_FILE: recordFile } }),
    );
    const response = await fetch(url, { method: "POST", body: "payload" });
    expect(response.status).toBe(202);
    const { call_id: callId } = (await response.json()) as { call_id: string };
    expect(response.headers.get("x-call-id")).toBe(callId);
    await eventually(() => existsSync(recordFile), "the async call ran");
    expect(readFileSync(recordFile, "utf8")).toBe("payload");
  });

  it("passes app config and the URL the client called into the environment", async () => {
    const url = await publicRoute(testRoute("env"));
    const response = await fetch(`${url}?x=1&y=%20z`, {
      method: "POST",
      headers: { "X-Auth-Token": "secret" },
    });
    const { env } = (await response.json()) as { env: Record<string, string> };
    expect(env.GREETING).toBe("hi");
    // The URL the client called, which reaches the function again: the tenant's app name, not the engine's.
    expect(env.REQUEST_URL).toBe(`${url}?x=1&y=%20z`);
    expect(env).not.toHaveProperty("HEADER_X_AUTH_TOKEN");
  });
});
