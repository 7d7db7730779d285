import { afterAll, describe, expect, it } from "vitest";
import type { Authenticator } from "../../../app/services/auth/types.ts";
import { EngineError, type FunctionEngine } from "../../../app/services/engine/types.ts";
import { createReadinessProbe, describeFailure } from "../../../app/services/health/index.ts";
import { createDatabase } from "../../../db/client.ts";
import { rejectingAuthenticator, testApp, unreachableEngine } from "../../support/app.ts";
import { freePort } from "../../support/cli.ts";
import { openTestDatabase } from "../../support/db.ts";

const database = openTestDatabase();
afterAll(() => database.close());

/** An engine whose ping answers as told and counts its calls; every other method is unreachable. */
function pingableEngine(ping: () => Promise<void> = async () => {}) {
  const calls = { count: 0 };
  const engine = new Proxy(unreachableEngine, {
    get(target, property, receiver) {
      if (property === "ping")
        return () => {
          calls.count++;
          return ping();
        };
      return Reflect.get(target, property, receiver);
    },
  }) as FunctionEngine;
  return { engine, calls };
}

const pingableKeystone = (ping: () => Promise<void> = async () => {}): Authenticator => ({
  ...rejectingAuthenticator,
  ping,
});

type Report = {
  status: string;
  checked_at: string;
  checks: Record<
    string,
    { status: string; critical: boolean; latency_ms?: number; error?: string; message?: string }
  >;
};

const detailed = async (app: ReturnType<typeof testApp>["app"], query = "?detailed=1") => {
  const response = await app.fetch(new Request(`http://x/healthcheck${query}`));
  return { response, report: (await response.json()) as Report };
};

describe("GET /healthcheck", () => {
  it("answers 200 OK in plain text while serving, also to HEAD", async () => {
    const { app } = testApp(database);
    const response = await app.fetch(new Request("http://x/healthcheck"));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("x-openstack-request-id")).toMatch(/^req-/);
    expect(await response.text()).toBe("OK");
    const head = await app.fetch(new Request("http://x/healthcheck", { method: "HEAD" }));
    expect(head.status).toBe(200);
  });

  it("answers 503 while draining for shutdown, plain and detailed", async () => {
    const { app, services } = testApp(database, { engine: pingableEngine().engine });
    services.lifecycle.draining = true;
    const plain = await app.fetch(new Request("http://x/healthcheck"));
    expect(plain.status).toBe(503);
    expect(await plain.text()).toBe("DRAINING");
    const { response, report } = await detailed(app);
    expect(response.status).toBe(503);
    expect(report.status).toBe("draining");
    expect(report.checks.database?.status).toBe("ok");
  });

  it("does not consult dependencies for the plain answer", async () => {
    const { engine, calls } = pingableEngine();
    const { app } = testApp(database, { engine });
    await app.fetch(new Request("http://x/healthcheck"));
    expect(calls.count).toBe(0);
  });

  it("reports every dependency ok with its latency", async () => {
    const { app } = testApp(database, {
      engine: pingableEngine().engine,
      authenticator: pingableKeystone(),
    });
    const { response, report } = await detailed(app);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(report.status).toBe("ok");
    expect(Number.isNaN(Date.parse(report.checked_at))).toBe(false);
    for (const name of ["database", "keystone", "engine"]) {
      expect(report.checks[name]?.status).toBe("ok");
      expect(report.checks[name]?.latency_ms).toBeGreaterThanOrEqual(0);
    }
    expect(report.checks.database?.critical).toBe(true);
    expect(report.checks.keystone?.critical).toBe(false);
    expect(report.checks.engine?.critical).toBe(false);
  });

  it("accepts detailed=true and rejects an unknown value naming the parameter", async () => {
    const { app } = testApp(database, { engine: pingableEngine().engine });
    expect((await detailed(app, "?detailed=true")).report.checks.database?.status).toBe("ok");
    const bad = await app.fetch(new Request("http://x/healthcheck?detailed=maybe"));
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("validation_failed");
    expect(body.error.message).toContain("detailed");
  });

  it("stays 200 but degraded when the engine is down", async () => {
    const { app } = testApp(database, { engine: unreachableEngine, authenticator: pingableKeystone() });
    const { response, report } = await detailed(app);
    expect(response.status).toBe(200);
    expect(report.status).toBe("degraded");
    expect(report.checks.engine).toMatchObject({ status: "error", error: "unavailable", critical: false });
    expect(report.checks.database?.status).toBe("ok");
  });

  it("stays 200 but degraded when Keystone is down", async () => {
    const { app } = testApp(database, {
      engine: pingableEngine().engine,
      authenticator: pingableKeystone(async () => {
        throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5999"), { code: "ECONNREFUSED" });
      }),
    });
    const { response, report } = await detailed(app);
    expect(response.status).toBe(200);
    expect(report.status).toBe("degraded");
    expect(report.checks.keystone).toMatchObject({
      status: "error",
      error: "ECONNREFUSED",
      message: "connect ECONNREFUSED 127.0.0.1:5999",
    });
  });

  it("answers 503 unavailable when MySQL is down, without the database password", async () => {
    const port = await freePort();
    const password = "hunter2-db-secret";
    const deadDatabase = createDatabase(`mysql://picasso:${password}@127.0.0.1:${port}/picasso`, {
      connectTimeoutMs: 1000,
    });
    try {
      const { app } = testApp(deadDatabase, { engine: pingableEngine().engine });
      const response = await app.fetch(new Request("http://x/healthcheck?detailed=1"));
      const text = await response.text();
      expect(response.status).toBe(503);
      const report = JSON.parse(text) as Report;
      expect(report.status).toBe("unavailable");
      expect(report.checks.database).toMatchObject({
        status: "error",
        critical: true,
        error: "ECONNREFUSED",
      });
      expect(text).not.toContain(password);
      // The plain check is about this process only: MySQL down must not take every instance out.
      expect((await app.fetch(new Request("http://x/healthcheck"))).status).toBe(200);
    } finally {
      await deadDatabase.close();
    }
  });

  it("counts a dependency that does not answer in time as failed", async () => {
    const { app } = testApp(database, {
      engine: pingableEngine(() => new Promise<void>(() => {})).engine,
      operator: { healthTimeoutMs: 50 },
    });
    const { report } = await detailed(app);
    expect(report.checks.engine).toMatchObject({ status: "error", error: "timeout" });
    expect(report.status).toBe("degraded");
  });

  it("skips Keystone under noauth and an authenticator without ping", async () => {
    const noauth = testApp(database, {
      engine: pingableEngine().engine,
      authenticator: { ...rejectingAuthenticator, kind: "noauth" },
    });
    expect((await detailed(noauth.app)).report.checks.keystone).toMatchObject({ status: "skipped" });
    const unprobeable = testApp(database, { engine: pingableEngine().engine });
    const { report } = await detailed(unprobeable.app);
    expect(report.checks.keystone?.status).toBe("skipped");
    expect(report.status).toBe("ok");
  });

  it("reuses a report within the cache time and checks again when it is 0", async () => {
    const cached = pingableEngine();
    const { app } = testApp(database, { engine: cached.engine, operator: { healthCacheMs: 60_000 } });
    const first = await detailed(app);
    const second = await detailed(app);
    expect(cached.calls.count).toBe(1);
    expect(second.report.checked_at).toBe(first.report.checked_at);

    const uncached = pingableEngine();
    const fresh = testApp(database, { engine: uncached.engine, operator: { healthCacheMs: 0 } });
    await detailed(fresh.app);
    await detailed(fresh.app);
    expect(uncached.calls.count).toBe(2);
  });

  it("keeps each app's cache to itself", async () => {
    const one = pingableEngine();
    const two = pingableEngine();
    await detailed(testApp(database, { engine: one.engine, operator: { healthCacheMs: 60_000 } }).app);
    await detailed(testApp(database, { engine: two.engine, operator: { healthCacheMs: 60_000 } }).app);
    expect([one.calls.count, two.calls.count]).toEqual([1, 1]);
  });
});

describe("readiness probe", () => {
  it("lets concurrent probes share one round of checks", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { engine, calls } = pingableEngine(() => gate);
    const probe = createReadinessProbe(
      { db: database.db, authenticator: rejectingAuthenticator, engine },
      { cacheMs: 0, timeoutMs: 10_000 },
    );
    const reports = Array.from({ length: 20 }, () => probe.check());
    release();
    const settled = await Promise.all(reports);
    expect(calls.count).toBe(1);
    expect(new Set(settled).size).toBe(1);
    await probe.check();
    expect(calls.count).toBe(2);
  });

  it("describes failures by a short code and strips credentials from messages", () => {
    expect(describeFailure(new EngineError("timeout", "engine slow"))).toEqual({
      error: "timeout",
      message: "engine slow",
    });
    const leaky = new Error(
      "cannot reach http://admin:s3cr3t@keystone.example:5000/v3 (mysql://u:p4ss@db/x)",
    );
    const described = describeFailure(leaky);
    expect(described.error).toBe("error");
    expect(described.message).not.toMatch(/s3cr3t|p4ss/);
    expect(described.message).toContain("http://***@keystone.example:5000/v3");
    const aggregate = Object.assign(new AggregateError([], ""), { code: "ECONNREFUSED" });
    expect(describeFailure(aggregate)).toEqual({ error: "ECONNREFUSED", message: "ECONNREFUSED" });
  });
});
