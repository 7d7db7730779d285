// Redis in the detailed readiness report: only when configured, never critical.
import { afterAll, describe, expect, it } from "vitest";
import { testApp } from "../../support/app.ts";
import { freePort } from "../../support/cli.ts";
import { openTestDatabase } from "../../support/db.ts";
import { eventually, testRedis, waitUntilReady } from "../../support/rate-limit.ts";

const database = openTestDatabase();
afterAll(() => database.close());

type Check = { status: string; critical: boolean; error?: string; message?: string };

const detailed = async (app: ReturnType<typeof testApp>["app"]) => {
  const response = await app.fetch(new Request("http://x/healthcheck?detailed=1"));
  return {
    status: response.status,
    report: (await response.json()) as { status: string; checks: Record<string, Check> },
  };
};

describe("readiness with Redis", () => {
  it("leaves Redis out when it is not configured", async () => {
    const { report } = await detailed(testApp(database).app);
    expect(Object.keys(report.checks).sort()).toEqual(["database", "engine", "keystone"]);
  });

  it("reports a reachable Redis as ok", async () => {
    const redis = testRedis();
    try {
      await waitUntilReady(redis);
      const { report } = await detailed(testApp(database, { redis }).app);
      expect(report.checks.redis).toMatchObject({
        status: "ok",
        critical: false,
        latency_ms: expect.any(Number),
      });
    } finally {
      await redis.close();
    }
  });

  it("reports an unreachable Redis with the reason, as degraded but still ready", async () => {
    const redis = testRedis(`redis://127.0.0.1:${await freePort()}`);
    try {
      const { app } = testApp(database, { redis, operator: { healthCacheMs: 0 } });
      const { status, report } = await eventually(async () => {
        const answer = await detailed(app);
        expect(answer.report.checks.redis?.error).toBe("ECONNREFUSED");
        return answer;
      });
      expect(status).toBe(200);
      expect(report.checks.redis).toMatchObject({
        status: "error",
        critical: false,
        message: expect.stringMatching(/^Redis is not connected: connect ECONNREFUSED 127\.0\.0\.1:\d+$/),
      });
    } finally {
      await redis.close();
    }
  });
});
