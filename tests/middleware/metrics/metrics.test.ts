import { register as globalRegistry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import { ApiError } from "../../../app/lib/errors.ts";
import { observeDatabasePool, poolConnectionCounts } from "../../../app/services/metrics/db-pool.ts";
import { createMetrics } from "../../../app/services/metrics/index.ts";
import { createDatabase } from "../../../db/client.ts";
import { testApp } from "../../support/app.ts";
import { openTestDatabase, testDbUri } from "../../support/db.ts";

const database = openTestDatabase();
afterAll(() => database.close());

async function scrape(app: ReturnType<typeof testApp>["app"]): Promise<string> {
  const response = await app.fetch(new Request("http://x/metrics"));
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of one sample line, e.g. `picasso_http_requests_total{method="GET",...}`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const labelText = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .join(",");
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name}{${labelText}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** An app with a parameterised route, as the resources will have. */
function appWithRoutes() {
  const built = testApp(database);
  built.app.get("/v1/:project_id/things/:thing", (c) => c.json({ thing: c.req.param("thing") }));
  built.app.get("/v1/:project_id/broken", () => {
    throw new ApiError("engine_error", "engine said no");
  });
  built.app.all("/probe/:app/:route", (c) => c.text("invoked"));
  return built;
}

describe("GET /metrics", () => {
  it("serves the Prometheus text format", async () => {
    const { app } = testApp(database);
    const response = await app.fetch(new Request("http://x/metrics"));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await response.text();
    for (const name of [
      "picasso_http_requests_total",
      "picasso_http_request_duration_seconds",
      "picasso_invocations_total",
      "picasso_invocation_duration_seconds",
      "picasso_engine_errors_total",
      "picasso_keystone_requests_total",
      "picasso_token_cache_total",
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it("labels requests by route template, never by raw path", async () => {
    const { app } = appWithRoutes();
    const project = "0123456789abcdef0123456789abcdef";
    expect((await app.fetch(new Request(`http://x/v1/${project}/things/secret-thing-name`))).status).toBe(
      200,
    );
    expect((await app.fetch(new Request(`http://x/v1/${project}/things/other`))).status).toBe(200);
    expect((await app.fetch(new Request(`http://x/v1/${project}/broken`))).status).toBe(502);
    expect((await app.fetch(new Request("http://x/probe/myapp/hello", { method: "POST" }))).status).toBe(200);
    expect((await app.fetch(new Request("http://x/no/such/path/at-all"))).status).toBe(404);
    const text = await scrape(app);

    const counted = (method: string, route: string, status_class: string) =>
      sample(text, "picasso_http_requests_total", { method, route, status_class });
    expect(counted("GET", "/v1/:project_id/things/:thing", "2xx")).toBe(2);
    expect(counted("GET", "/v1/:project_id/broken", "5xx")).toBe(1);
    expect(counted("POST", "/probe/:app/:route", "2xx")).toBe(1);
    expect(counted("GET", "unmatched", "4xx")).toBe(1);
    expect(
      sample(text, "picasso_http_request_duration_seconds_count", {
        method: "GET",
        route: "/v1/:project_id/things/:thing",
        status_class: "2xx",
      }),
    ).toBe(2);
    for (const raw of [project, "secret-thing-name", "myapp", "at-all"]) expect(text).not.toContain(raw);
  });

  it("folds unknown methods into one label value", async () => {
    const { app } = testApp(database);
    await app.fetch(new Request("http://x/", { method: "PROPFIND" }));
    await app.fetch(new Request("http://x/", { method: "HEAD" }));
    const text = await scrape(app);
    expect(
      sample(text, "picasso_http_requests_total", {
        method: "other",
        route: "unmatched",
        status_class: "4xx",
      }),
    ).toBe(1);
    expect(
      sample(text, "picasso_http_requests_total", { method: "HEAD", route: "/", status_class: "2xx" }),
    ).toBe(1);
    expect(text).not.toContain("PROPFIND");
  });

  it("starts the closed label sets at zero and counts what the typed object records", async () => {
    const { app, services } = testApp(database);
    let text = await scrape(app);
    expect(sample(text, "picasso_token_cache_total", { result: "hit" })).toBe(0);
    expect(sample(text, "picasso_invocations_total", { outcome: "timeout" })).toBe(0);
    expect(sample(text, "picasso_engine_errors_total", { kind: "unavailable" })).toBe(0);
    expect(sample(text, "picasso_keystone_requests_total", { outcome: "error" })).toBe(0);

    services.metrics.tokenCache.inc({ result: "hit" });
    services.metrics.tokenCache.inc({ result: "hit" });
    services.metrics.keystoneRequests.inc({ outcome: "rejected" });
    services.metrics.engineErrors.inc({ kind: "timeout" });
    services.metrics.invocations.record({ outcome: "success" }, 0.2);
    services.metrics.invocations.record({ outcome: "function_error" }, 0.01);
    text = await scrape(app);
    expect(sample(text, "picasso_token_cache_total", { result: "hit" })).toBe(2);
    expect(sample(text, "picasso_keystone_requests_total", { outcome: "rejected" })).toBe(1);
    expect(sample(text, "picasso_engine_errors_total", { kind: "timeout" })).toBe(1);
    expect(sample(text, "picasso_invocations_total", { outcome: "success" })).toBe(1);
    expect(
      sample(text, "picasso_invocation_duration_seconds_bucket", { le: "0.25", outcome: "success" }),
    ).toBe(1);
    expect(sample(text, "picasso_invocation_duration_seconds_count", { outcome: "function_error" })).toBe(1);
  });

  it("keeps one registry per app and leaves prom-client's global registry empty", async () => {
    const first = testApp(database);
    const second = testApp(database);
    await first.app.fetch(new Request("http://x/"));
    await first.app.fetch(new Request("http://x/"));
    await second.app.fetch(new Request("http://x/"));
    const labels = { method: "GET", route: "/", status_class: "2xx" };
    expect(sample(await scrape(first.app), "picasso_http_requests_total", labels)).toBe(2);
    expect(sample(await scrape(second.app), "picasso_http_requests_total", labels)).toBe(1);
    expect(globalRegistry.getMetricsAsArray()).toHaveLength(0);
  });

  it("adds process metrics and build info when asked (as serve does)", async () => {
    const metrics = createMetrics({ processMetrics: true, version: "9.9.9" });
    const { app } = testApp(database, { metrics });
    const text = await scrape(app);
    expect(text).toContain("process_cpu_user_seconds_total");
    expect(text).toContain("nodejs_eventloop_lag_seconds");
    expect(sample(text, "picasso_build_info", { version: "9.9.9" })).toBe(1);
    expect(globalRegistry.getMetricsAsArray()).toHaveLength(0);
  });

  it("is not served with --metrics off, while requests are still counted", async () => {
    const { app, services } = testApp(database, { operator: { metricsEndpoint: false } });
    const response = await app.fetch(new Request("http://x/metrics"));
    expect(response.status).toBe(404);
    const text = await services.metrics.registry.metrics();
    expect(
      sample(text, "picasso_http_requests_total", { method: "GET", route: "unmatched", status_class: "4xx" }),
    ).toBe(1);
    const document = (await (await app.fetch(new Request("http://x/api/openapi.json"))).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(document.paths)).not.toContain("/metrics");
  });
});

describe("picasso_db_pool_connections", () => {
  it("reports connections in use, idle and queued from the mysql2 pool", async () => {
    const pool = createDatabase(testDbUri(), { connectionLimit: 1 });
    try {
      const metrics = createMetrics();
      observeDatabasePool(metrics, pool.pool);
      const gauge = async () => {
        const text = await metrics.registry.metrics();
        return {
          in_use: sample(text, "picasso_db_pool_connections", { state: "in_use" }),
          idle: sample(text, "picasso_db_pool_connections", { state: "idle" }),
          queued: sample(text, "picasso_db_pool_connections", { state: "queued" }),
        };
      };
      expect(await gauge()).toEqual({ in_use: 0, idle: 0, queued: 0 });

      const held = await pool.pool.getConnection();
      const waiting = pool.pool.query("SELECT 1");
      expect(await gauge()).toEqual({ in_use: 1, idle: 0, queued: 1 });
      held.release();
      await waiting;
      expect(await gauge()).toEqual({ in_use: 0, idle: 1, queued: 0 });
      expect(poolConnectionCounts(pool.pool)).toEqual({ in_use: 0, idle: 1, queued: 0 });
    } finally {
      await pool.close();
    }
  });
});
