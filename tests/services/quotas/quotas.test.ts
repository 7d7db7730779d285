import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { ApiError } from "../../../app/lib/errors.ts";
import { createMemoryInFlightCounter, type InFlightCounter } from "../../../app/services/quotas/in-flight.ts";
import { testQuotas } from "../../support/app.ts";
import { openTestDatabase } from "../../support/db.ts";

const database = openTestDatabase();
afterAll(() => database.close());

const project = () => randomBytes(16).toString("hex");

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Takes a slot and gives it back at once; true when one was free. */
const canInvoke = async (quotas: ReturnType<typeof testQuotas>, projectId: string) => {
  try {
    (await quotas.acquireInvocation(projectId, 30))();
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.code === "concurrency_quota_exceeded") return false;
    throw error;
  }
};

describe("quota service", () => {
  it("takes each limit from the project's row, else from the defaults", async () => {
    const quotas = testQuotas(database, {
      defaults: { apps: 4, routes_per_app: 5, concurrent_invocations: 6 },
    });
    const p = project();
    expect(await quotas.limits(p)).toEqual({ apps: 4, routes_per_app: 5, concurrent_invocations: 6 });
    await quotas.update(p, { routes_per_app: -1 });
    expect(await quotas.limits(p)).toEqual({ apps: 4, routes_per_app: -1, concurrent_invocations: 6 });
    await quotas.update(p, { routes_per_app: null, apps: 0 });
    expect(await quotas.limits(p)).toEqual({ apps: 0, routes_per_app: 5, concurrent_invocations: 6 });
    await quotas.reset(p);
    expect(await quotas.limits(p)).toEqual({ apps: 4, routes_per_app: 5, concurrent_invocations: 6 });
  });

  it("caches the concurrency limit for invocations; this instance's changes apply at once", async () => {
    const quotas = testQuotas(database, { limitCacheTtlMs: 60_000 });
    const p = project();
    await quotas.update(p, { concurrent_invocations: 0 });
    expect(await canInvoke(quotas, p)).toBe(false);
    await quotas.update(p, { concurrent_invocations: 1 });
    expect(await canInvoke(quotas, p)).toBe(true);
    await quotas.reset(p);
    expect(await canInvoke(quotas, p)).toBe(true);
    await quotas.update(p, { concurrent_invocations: 0 });
    expect(await canInvoke(quotas, p)).toBe(false);
  });

  it("sees another instance's change once the cache entry expires, not before", async () => {
    const here = testQuotas(database, { limitCacheTtlMs: 300 });
    const elsewhere = testQuotas(database);
    const p = project();
    await elsewhere.update(p, { concurrent_invocations: 0 });
    expect(await canInvoke(here, p)).toBe(false);
    await elsewhere.update(p, { concurrent_invocations: 5 });
    // Still the cached 0 right after (the TTL is what bounds the delay), then the new limit.
    await until(() => canInvoke(here, p), "the change to reach this instance");
  });

  // With the limit cached, slots are granted and refused at once, without a promise.
  it.each([
    ["read each time", 0],
    ["cached", 60_000],
  ])("holds the slot until released, and names the quota when full (limit %s)", async (_how, ttlMs) => {
    const quotas = testQuotas(database, { limitCacheTtlMs: ttlMs });
    const p = project();
    await quotas.update(p, { concurrent_invocations: 1 });
    const release = await quotas.acquireInvocation(p, 30);
    if (ttlMs > 0) expect(() => quotas.acquireInvocation(p, 30)).toThrow(/^Quota exceeded/);
    const refusal = await (async () => quotas.acquireInvocation(p, 30))().catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(ApiError);
    expect((refusal as ApiError).status).toBe(429);
    expect((refusal as ApiError).headers).toEqual({ "Retry-After": "1" });
    expect((refusal as ApiError).message).toBe(
      "Quota exceeded for concurrent_invocations: requested 1, but already used 1 of 1 invocations",
    );
    expect((await quotas.report(p)).concurrent_invocations).toEqual({ limit: 1, inUse: 1 });
    release();
    expect((await quotas.report(p)).concurrent_invocations).toEqual({ limit: 1, inUse: 0 });
  });

  it("takes one slot per invocation from a counter that answers asynchronously (Redis)", async () => {
    const memory = createMemoryInFlightCounter();
    let acquisitions = 0;
    const asynchronous: InFlightCounter = {
      async acquire(projectId, limit, leaseMs) {
        acquisitions++;
        return memory.acquire(projectId, limit, leaseMs);
      },
      inUse: (projectId) => memory.inUse(projectId),
    };
    const quotas = testQuotas(database, { inFlight: asynchronous, limitCacheTtlMs: 60_000 });
    const p = project();
    const first = await quotas.acquireInvocation(p, 30);
    const second = await quotas.acquireInvocation(p, 30);
    expect(acquisitions).toBe(2);
    expect(await memory.inUse(p)).toBe(2);
    first();
    second();
    expect(await memory.inUse(p)).toBe(0);
  });
});
