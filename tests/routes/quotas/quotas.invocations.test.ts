// The concurrent-invocations quota on both invocation paths: at the limit the next call gets 429
// without reaching the engine, and every way an invocation ends gives its slot back.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { defaultRoleNames } from "../../../app/services/auth/types.ts";
import { createNoAuthAuthenticator } from "../../../app/services/noauth/index.ts";
import type { QuotaService } from "../../../app/services/quotas/index.ts";
import { testQuotas } from "../../support/app.ts";
import { openTestDatabase } from "../../support/db.ts";
import {
  type InvokeHarness,
  type Seeded,
  seedRoute,
  startInvokeHarness,
} from "../../support/invoke-harness.ts";

const database = openTestDatabase();
let harness: InvokeHarness;
let quotas: QuotaService;

beforeAll(async () => {
  quotas = testQuotas(database);
  harness = await startInvokeHarness(database, {
    // Every caller is a member of the project in the URL: private invocations without Keystone.
    authenticator: createNoAuthAuthenticator(defaultRoleNames),
    quotas,
  });
});
afterAll(async () => {
  harness.fake.setFault(null);
  await harness.close();
  await database.close();
});
beforeEach(() => harness.fake.setFault(null));

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const engineCallsTo = (seeded: Seeded) =>
  harness.fake.requests.filter((request) => request.path.startsWith(`/r/${seeded.engineApp}`)).length;

type Sender = (signal: AbortSignal) => Promise<Response>;
type Answer = { status: number; retryAfter: string | null; body: unknown };

/**
 * Sends `count` calls at once against an engine that never answers: `limit` of them hang in the
 * engine, the rest come back. Returns the answers that came back, then aborts the hanging ones.
 */
async function burst(seeded: Seeded, count: number, limit: number, send: Sender) {
  const aborts = Array.from({ length: count }, () => new AbortController());
  const answered: Answer[] = [];
  const pending = aborts.map((abort) =>
    send(abort.signal).then(
      async (response) => {
        // app.fetch answers an aborted call (with a body-less 499); fetch() rejects instead.
        if (abort.signal.aborted) return;
        const body = await response.json();
        answered.push({ status: response.status, retryAfter: response.headers.get("retry-after"), body });
      },
      () => {},
    ),
  );
  await until(() => answered.length === count - limit, `${count - limit} answers`);
  await until(() => engineCallsTo(seeded) === limit, `${limit} calls in the engine`);
  const inUseWhileHeld = await quotas.inFlight.inUse(seeded.projectId);
  for (const abort of aborts) abort.abort();
  await Promise.all(pending);
  return { answered: [...answered], inUseWhileHeld };
}

function expectRefusals(answered: Answer[], limit: number) {
  for (const answer of answered) {
    expect(answer).toEqual({
      status: 429,
      retryAfter: "1",
      body: {
        error: {
          code: "concurrency_quota_exceeded",
          message: `Quota exceeded for concurrent_invocations: requested 1, but already used ${limit} of ${limit} invocations`,
        },
      },
    });
  }
}

const post = (url: string, signal?: AbortSignal) => fetch(url, { method: "POST", body: "{}", signal });

describe("concurrent invocations quota", () => {
  it("on the Node path: exactly the limit reach the engine, the rest get 429 with Retry-After", async () => {
    const seeded = await seedRoute(database, harness.fake);
    const limit = 3;
    const extra = 4;
    await quotas.update(seeded.projectId, { concurrent_invocations: limit });
    harness.fake.clearRequests();
    harness.fake.setFault({ kind: "hang", scope: "r" });
    const url = `${harness.base}/r/${seeded.appName}/hello`;
    const { answered, inUseWhileHeld } = await burst(seeded, limit + extra, limit, (signal) =>
      post(url, signal),
    );
    expect(answered).toHaveLength(extra);
    expect(inUseWhileHeld).toBe(limit);
    expect(engineCallsTo(seeded)).toBe(limit);
    expectRefusals(answered, limit);

    // The clients that went away gave their slots back; a call now runs.
    await until(async () => (await quotas.inFlight.inUse(seeded.projectId)) === 0, "slots released");
    harness.fake.setFault(null);
    const again = await post(url);
    expect(again.status).toBe(200);
    expect((await again.text()).trim()).toBe("Hello World!");
    await until(async () => (await quotas.inFlight.inUse(seeded.projectId)) === 0, "the slot released");
  });

  it("on the portable path: the same, through app.fetch", async () => {
    const seeded = await seedRoute(database, harness.fake);
    const limit = 2;
    const extra = 3;
    await quotas.update(seeded.projectId, { concurrent_invocations: limit });
    harness.fake.clearRequests();
    harness.fake.setFault({ kind: "hang", scope: "r" });
    const url = `http://picasso.test/r/${seeded.appName}/hello`;
    const { answered } = await burst(seeded, limit + extra, limit, async (signal) =>
      harness.app.fetch(new Request(url, { method: "POST", body: "{}", signal })),
    );
    expect(answered).toHaveLength(extra);
    expect(engineCallsTo(seeded)).toBe(limit);
    expectRefusals(answered, limit);
    await until(async () => (await quotas.inFlight.inUse(seeded.projectId)) === 0, "slots released");
  });

  it("on the portable path holds the slot until the body has been read, or cancelled", async () => {
    const seeded = await seedRoute(database, harness.fake);
    const url = `http://picasso.test/r/${seeded.appName}/hello`;
    const read = await harness.app.fetch(new Request(url, { method: "POST", body: "{}" }));
    expect(read.status).toBe(200);
    expect(await quotas.inFlight.inUse(seeded.projectId)).toBe(1);
    expect((await read.text()).trim()).toBe("Hello World!");
    expect(await quotas.inFlight.inUse(seeded.projectId)).toBe(0);

    const cancelled = await harness.app.fetch(new Request(url, { method: "POST", body: "{}" }));
    expect(await quotas.inFlight.inUse(seeded.projectId)).toBe(1);
    await cancelled.body?.cancel();
    expect(await quotas.inFlight.inUse(seeded.projectId)).toBe(0);
  });

  it("counts public and private invocations of the project together", async () => {
    const projectId = (await seedRoute(database, harness.fake)).projectId;
    const publicRoute = await seedRoute(database, harness.fake, { projectId, isPublic: true });
    const privateRoute = await seedRoute(database, harness.fake, { projectId, isPublic: false });
    await quotas.update(projectId, { concurrent_invocations: 1 });
    harness.fake.setFault({ kind: "hang", scope: "r" });
    const held = new AbortController();
    const hanging = post(`${harness.base}/r/${publicRoute.appName}/hello`, held.signal).catch(() => null);
    await until(() => engineCallsTo(publicRoute) === 1, "the public call in the engine");
    harness.fake.clearRequests();
    const refused = await post(`${harness.base}/v1/r/${projectId}/${privateRoute.appName}/hello`);
    expect(refused.status).toBe(429);
    expect(engineCallsTo(privateRoute)).toBe(0);
    // Another project is not affected.
    const elsewhere = await seedRoute(database, harness.fake);
    harness.fake.setFault(null);
    expect((await post(`${harness.base}/r/${elsewhere.appName}/hello`)).status).toBe(200);
    held.abort();
    await hanging;
    await until(async () => (await quotas.inFlight.inUse(projectId)) === 0, "the slot released");
    expect((await post(`${harness.base}/v1/r/${projectId}/${privateRoute.appName}/hello`)).status).toBe(200);
  });

  it("gives the slot back when the invocation fails: engine down, function timeout, body too large", async () => {
    const seeded = await seedRoute(database, harness.fake, { route: { timeout: 1 } });
    await quotas.update(seeded.projectId, { concurrent_invocations: 1 });
    const url = `${harness.base}/r/${seeded.appName}/hello`;
    const idle = async () => expect(await quotas.inFlight.inUse(seeded.projectId)).toBe(0);

    harness.fake.setFault({ kind: "hang", scope: "r" });
    expect((await post(url)).status).toBe(504);
    await idle();
    const portable = await harness.app.fetch(
      new Request(`http://picasso.test/r/${seeded.appName}/hello`, { method: "POST", body: "{}" }),
    );
    expect(portable.status).toBe(504);
    await idle();

    harness.fake.setFault({ kind: "refuse-connections" });
    expect((await post(url)).status).toBe(502);
    await idle();
    harness.fake.setFault(null);

    const small = await seedRoute(database, harness.fake, { projectId: seeded.projectId, maxBodyBytes: 10 });
    const tooLarge = await fetch(`${harness.base}/r/${small.appName}/hello`, {
      method: "POST",
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("x".repeat(100)));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(tooLarge.status).toBe(413);
    await until(async () => (await quotas.inFlight.inUse(seeded.projectId)) === 0, "the slot released");
    expect((await post(url)).status).toBe(200);
  });

  it("a limit of 0 refuses every invocation before the engine; -1 counts without limit", async () => {
    const seeded = await seedRoute(database, harness.fake);
    await quotas.update(seeded.projectId, { concurrent_invocations: 0 });
    harness.fake.clearRequests();
    const refused = await post(`${harness.base}/r/${seeded.appName}/hello`);
    expect(refused.status).toBe(429);
    expect(engineCallsTo(seeded)).toBe(0);
    await quotas.update(seeded.projectId, { concurrent_invocations: -1 });
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => post(`${harness.base}/r/${seeded.appName}/hello`)),
    );
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    await Promise.all(responses.map((response) => response.text()));
    await until(async () => (await quotas.inFlight.inUse(seeded.projectId)) === 0, "slots released");
  });
});
