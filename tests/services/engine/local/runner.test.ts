import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, groupMembers, isRunning } from "../../../support/processes.ts";
import { bodyOf, fixtures, openBody, readChunk, testCall, testEngine, testRoute } from "./support.ts";

const scratch = mkdtempSync(join(tmpdir(), "picasso-local-runner-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

type EnvOutput = { env: Record<string, string>; stdin: string; cwd: string };

describe("local runner: the function contract", () => {
  it("gives the function IronFunctions' environment and nothing of Picasso's", async () => {
    const { engine } = testEngine();
    process.env.PICASSO_TEST_SECRET = "must-not-leak";
    const headers = new Headers({
      host: "picasso.test:10001",
      "x-custom-thing": "one",
      "x-auth-token": "secret-token",
      cookie: "session=secret",
      authorization: "Bearer secret",
      "content-type": "application/json",
    });
    headers.append("x-multi", "a");
    headers.append("x-multi", "b");
    const call = testCall(
      testRoute("env", {
        path: "/hello/world",
        config: { "route-key": "route", shared: "from-route" },
      }),
      {
        engineApp: "myapp-demo",
        appConfig: { "app-key": "app", shared: "from-app" },
        method: "PUT",
        path: "/hello/world",
        query: "a=1&b=%20x",
        headers,
        body: bodyOf("the body"),
      },
    );
    const response = await engine.invoke(call);
    delete process.env.PICASSO_TEST_SECRET;
    expect(response.status).toBe(200);
    const output = (await response.json()) as EnvOutput;
    expect(output.stdin).toBe("the body");
    expect(output.cwd).toBe(fixtures);
    const { env } = output;
    expect(env).toMatchObject({
      METHOD: "PUT",
      ROUTE: "/hello/world",
      REQUEST_URL: "http://picasso.test:10001/r/myapp-demo/hello/world?a=1&b=%20x",
      APP_KEY: "app",
      ROUTE_KEY: "route",
      SHARED: "from-route",
      HEADER_X_CUSTOM_THING: "one",
      HEADER_X_MULTI: "a, b",
      HEADER_CONTENT_TYPE: "application/json",
      HEADER_X_OPENSTACK_REQUEST_ID: call.requestId,
      HOME: tmpdir(),
    });
    expect(env.PATH).toBeTruthy();
    expect(env.LANG).toBeTruthy();
    for (const name of ["HEADER_HOST", "HEADER_X_AUTH_TOKEN", "HEADER_COOKIE", "HEADER_AUTHORIZATION"]) {
      expect(env).not.toHaveProperty(name);
    }
    expect(JSON.stringify(output)).not.toContain("secret");
    expect(JSON.stringify(output)).not.toContain("must-not-leak");
    const allowed = /^(PATH|HOME|LANG|METHOD|ROUTE|REQUEST_URL|APP_KEY|ROUTE_KEY|SHARED|HEADER_.*)$/;
    // A shell may add a few of its own (PWD, SHLVL, _); node adds none.
    expect(Object.keys(env).filter((name) => !allowed.test(name))).toEqual([]);
  });

  it("passes Authorization and Cookie (never X-Auth-Token) only when the call asks for them", async () => {
    const { engine } = testEngine();
    const headers = () =>
      new Headers({
        "x-auth-token": "secret-token",
        "proxy-authorization": "Basic secret",
        cookie: "session=abc",
        authorization: "Bearer user",
      });
    const forwarded = await engine.invoke(
      testCall(testRoute("env"), { method: "GET", headers: headers(), forwardAuthHeaders: true }),
    );
    const { env } = (await forwarded.json()) as EnvOutput;
    expect(env).toMatchObject({ HEADER_AUTHORIZATION: "Bearer user", HEADER_COOKIE: "session=abc" });
    expect(env).not.toHaveProperty("HEADER_X_AUTH_TOKEN");
    expect(env).not.toHaveProperty("HEADER_PROXY_AUTHORIZATION");
    const withheld = await engine.invoke(testCall(testRoute("env"), { method: "GET", headers: headers() }));
    const plain = ((await withheld.json()) as EnvOutput).env;
    for (const name of ["HEADER_AUTHORIZATION", "HEADER_COOKIE", "HEADER_X_AUTH_TOKEN"]) {
      expect(plain).not.toHaveProperty(name);
    }
  });

  it("feeds a GET the first payload query value, form-decoded, and other body-less calls nothing", async () => {
    const { engine } = testEngine();
    const get = await engine.invoke(
      testCall(testRoute("env"), { method: "GET", query: "payload=%7B%22a%22%3A+1%7D&payload=second" }),
    );
    expect(((await get.json()) as EnvOutput).stdin).toBe('{"a": 1}');
    const head = await engine.invoke(testCall(testRoute("env"), { method: "DELETE", body: null }));
    expect(((await head.json()) as EnvOutput).stdin).toBe("");
  });

  it("answers 200 with route headers (first value) and a sniffed or given Content-Type", async () => {
    const { engine } = testEngine();
    const sniffed = await engine.invoke(
      testCall(testRoute("html", { headers: { "X-Powered-By": ["picasso", "ignored"], "X-Empty": [] } })),
    );
    expect(sniffed.status).toBe(200);
    expect(sniffed.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(sniffed.headers.get("x-powered-by")).toBe("picasso");
    expect(sniffed.headers.has("x-empty")).toBe(false);
    expect(await sniffed.text()).toBe("<html><body>hi</body></html>");

    const given = await engine.invoke(
      testCall(testRoute("env", { headers: { "Content-Type": ["application/json"] } }), {
        body: bodyOf("x"),
      }),
    );
    expect(given.headers.get("content-type")).toBe("application/json");
    await given.arrayBuffer();

    const text = await engine.invoke(testCall(testRoute("hold"), { body: null }));
    expect(text.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(await text.text()).toBe("released\n");

    const empty = await engine.invoke(testCall(testRoute("quiet", { headers: { "X-Route": ["yes"] } })));
    expect(empty.status).toBe(200);
    expect(empty.headers.has("content-type")).toBe(false);
    expect(empty.headers.get("x-route")).toBe("yes");
    expect(await empty.text()).toBe("");
  });

  it("streams stdout: the first bytes arrive while the process still runs", async () => {
    const { engine } = testEngine();
    const input = openBody();
    const response = await engine.invoke(testCall(testRoute("stream"), { body: input.body }));
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await readChunk(reader);
    const pid = Number(/started (\d+)/.exec(first ?? "")?.[1]);
    expect(isRunning(pid)).toBe(true);
    input.write("more input");
    input.close();
    let rest = "";
    for (let chunk = await readChunk(reader); chunk !== null; chunk = await readChunk(reader)) rest += chunk;
    expect(rest).toBe("finished\n");
    await eventually(() => !isRunning(pid), "the function process exited");
  });

  it("answers 500 exit code N for a failing function with no output, stderr logged at debug", async () => {
    const { engine, log } = testEngine();
    const call = testCall(testRoute("fail", { headers: { "X-Route": ["yes"] } }));
    const response = await engine.invoke(call);
    expect(response.status).toBe(500);
    expect(response.headers.get("x-route")).toBe("yes");
    expect(await response.json()).toEqual({ error: { message: "exit code 3", code: "function_error" } });
    const stderr = log.entries.find((entry) => entry.message === "function stderr");
    expect(stderr).toMatchObject({
      level: "debug",
      fields: { line: "something went wrong", request_id: call.requestId },
    });
  });

  it("cuts the body short when the function fails after its output started", async () => {
    const { engine } = testEngine();
    const response = await engine.invoke(testCall(testRoute("partial-fail")));
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow(/exit code 4/);
  });

  it("kills the function and its whole process group at the route timeout, answering 504", async () => {
    const { engine } = testEngine();
    const pidFile = join(scratch, `pids-${randomUUID()}`);
    const response = await engine.invoke(
      testCall(testRoute("silent-sleeper", { timeout: 1, config: { PID_FILE: pidFile } })),
    );
    expect(response.status).toBe(504);
    expect(await response.json()).toEqual({ error: { message: "Timed out", code: "gateway_timeout" } });
    const [pid, grandchild] = readFileSync(pidFile, "utf8").trim().split(" ").map(Number);
    expect(pid).toBeGreaterThan(1);
    expect(grandchild).toBeGreaterThan(1);
    await eventually(() => !isRunning(pid as number), "the function process is gone");
    await eventually(() => !isRunning(grandchild as number), "the grandchild is gone");
    await eventually(() => groupMembers(pid as number).length === 0, "the process group is empty");
    expect(engine.activity()).toEqual({ running: 0, waiting: 0, processes: 0 });
  });

  it("kills the process when the caller goes away before any output", async () => {
    const { engine } = testEngine();
    const pidFile = join(scratch, `pids-${randomUUID()}`);
    const client = new AbortController();
    const pending = engine.invoke(
      testCall(testRoute("silent-sleeper", { config: { PID_FILE: pidFile } }), { signal: client.signal }),
    );
    await eventually(
      () => existsSync(pidFile) && readFileSync(pidFile, "utf8").includes(" "),
      "pids written",
    );
    client.abort(new Error("client went away"));
    await expect(pending).rejects.toThrow(/client went away/);
    const [pid, grandchild] = readFileSync(pidFile, "utf8").trim().split(" ").map(Number);
    await eventually(
      () => !isRunning(pid as number) && !isRunning(grandchild as number),
      "both processes gone",
    );
    await eventually(() => groupMembers(pid as number).length === 0, "the process group is empty");
  });

  it("kills the process when the caller stops reading a streamed response", async () => {
    const { engine } = testEngine();
    const response = await engine.invoke(testCall(testRoute("loud-sleeper")));
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const [pid, grandchild] = ((await readChunk(reader)) ?? "").trim().split(" ").map(Number);
    expect(isRunning(pid as number)).toBe(true);
    await reader.cancel();
    await eventually(
      () => !isRunning(pid as number) && !isRunning(grandchild as number),
      "both processes gone",
    );
    await eventually(() => engine.activity().processes === 0, "the runner forgot the process");
  });

  it("bounds concurrent processes per route: excess calls queue, then get 503 with Retry-After", async () => {
    const { engine } = testEngine({ queueLimit: 1, queueWaitMs: 60_000 });
    const route = testRoute("hold", { maxConcurrency: 1, headers: { "X-Route": ["busy"] } });
    const engineApp = `app-${randomUUID().slice(0, 8)}`;
    const first = openBody();
    const firstResponse = engine.invoke(testCall(route, { engineApp, body: first.body }));
    await eventually(() => engine.activity().running === 1, "the first call runs");
    const second = openBody();
    const secondResponse = engine.invoke(testCall(route, { engineApp, body: second.body }));
    await eventually(() => engine.activity().waiting === 1, "the second call waits");
    expect(engine.activity().processes).toBe(1);

    const third = await engine.invoke(testCall(route, { engineApp, body: bodyOf("x") }));
    expect(third.status).toBe(503);
    expect(third.headers.get("retry-after")).toBe("1");
    expect(third.headers.get("x-route")).toBe("busy");
    expect(await third.json()).toMatchObject({ error: { code: "service_unavailable" } });

    // Another route is not held up by this one.
    const other = await engine.invoke(testCall(testRoute("html", { path: "/other" }), { engineApp }));
    expect(other.status).toBe(200);
    await other.text();

    first.close();
    expect(await (await firstResponse).text()).toBe("released\n");
    await eventually(
      () => engine.activity().processes === 1 && engine.activity().waiting === 0,
      "second runs",
    );
    second.close();
    expect(await (await secondResponse).text()).toBe("released\n");
  });

  it("refuses a queued call that waited its whole allowance with 503", async () => {
    const { engine } = testEngine({ queueLimit: 5, queueWaitMs: 50 });
    const route = testRoute("hold");
    const engineApp = `app-${randomUUID().slice(0, 8)}`;
    const first = openBody();
    const firstResponse = engine.invoke(testCall(route, { engineApp, body: first.body }));
    await eventually(() => engine.activity().running === 1, "the first call runs");
    const waited = await engine.invoke(testCall(route, { engineApp, body: bodyOf("x") }));
    expect(waited.status).toBe(503);
    expect(((await waited.json()) as { error: { message: string } }).error.message).toContain(
      "waited too long",
    );
    first.close();
    await (await firstResponse).text();
  });

  it("answers an async call 202 with a call id at once and runs it in the background", async () => {
    const { engine, log } = testEngine();
    const recordFile = join(scratch, `record-${randomUUID()}`);
    const input = openBody();
    input.write('{"alarm":"on"}');
    input.close();
    const response = await engine.invoke(
      testCall(testRoute("record", { type: "async", config: { RECORD_FILE: recordFile } }), {
        body: input.body,
      }),
    );
    expect(response.status).toBe(202);
    const { call_id: callId } = (await response.json()) as { call_id: string };
    expect(callId).toMatch(/^[0-9a-f-]{36}$/);
    await eventually(() => existsSync(recordFile), "the async call ran");
    expect(readFileSync(recordFile, "utf8")).toBe('{"alarm":"on"}');
    await eventually(
      () => log.entries.some((entry) => entry.message === "async call finished"),
      "the async call logged its end",
    );
    expect(log.entries.find((entry) => entry.message === "async call finished")?.fields).toMatchObject({
      call_id: callId,
      exit_code: 0,
      output: "recorded",
    });
  });

  it("runs async calls after the client left, killing them at the route timeout", async () => {
    const { engine, log } = testEngine();
    const pidFile = join(scratch, `pids-${randomUUID()}`);
    const client = new AbortController();
    const response = await engine.invoke(
      testCall(testRoute("silent-sleeper", { type: "async", timeout: 1, config: { PID_FILE: pidFile } }), {
        signal: client.signal,
      }),
    );
    expect(response.status).toBe(202);
    client.abort();
    await eventually(
      () => log.entries.some((entry) => entry.message === "async call timed out"),
      "timed out",
    );
    const [pid, grandchild] = readFileSync(pidFile, "utf8").trim().split(" ").map(Number);
    await eventually(
      () => !isRunning(pid as number) && !isRunning(grandchild as number),
      "both processes gone",
    );
  });

  it("kills every running process on close", async () => {
    const { engine } = testEngine();
    const input = openBody();
    const response = await engine.invoke(testCall(testRoute("stream"), { body: input.body }));
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const pid = Number(/started (\d+)/.exec((await readChunk(reader)) ?? "")?.[1]);
    await engine.close();
    await eventually(() => !isRunning(pid), "the function process is gone");
    await expect(reader.read()).rejects.toThrow();
    await expect(engine.invoke(testCall(testRoute("html")))).rejects.toMatchObject({ kind: "unavailable" });
  });

  it("answers 500 when the route's executable is missing at invocation", async () => {
    const { engine } = testEngine();
    const response = await engine.invoke(testCall(testRoute("no-such-function")));
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: { code: "function_error" } });
  });
});
