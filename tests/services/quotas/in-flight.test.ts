import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../../../app/lib/errors.ts";
import { createMemoryInFlightCounter, type InFlightCounter } from "../../../app/services/quotas/index.ts";
import { createRedisInFlightCounter } from "../../../app/services/quotas/redis-in-flight.ts";

const redisUrl = "redis://127.0.0.1:6379";
/** Keys of this run only, so runs and files never see each other's leases. */
const keyPrefix = `picasso-test:${randomBytes(6).toString("hex")}:inflight:`;
const lease = 30_000;

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const project = () => randomBytes(8).toString("hex");

/** What every counter must do, whatever it counts in. */
function behavesAsACounter(make: () => InFlightCounter) {
  it("grants up to the limit, refuses beyond, and frees a slot on release", async () => {
    const counter = make();
    const p = project();
    const first = await counter.acquire(p, 2, lease);
    const second = await counter.acquire(p, 2, lease);
    expect(first).toBeTypeOf("function");
    expect(second).toBeTypeOf("function");
    expect(await counter.acquire(p, 2, lease)).toBeNull();
    expect(await counter.inUse(p)).toBe(2);
    first?.();
    expect(await counter.acquire(p, 2, lease)).toBeTypeOf("function");
  });

  it("releases a slot once however often release is called", async () => {
    const counter = make();
    const p = project();
    const a = await counter.acquire(p, 3, lease);
    await counter.acquire(p, 3, lease);
    a?.();
    a?.();
    a?.();
    await until(async () => (await counter.inUse(p)) === 1, "one slot left");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await counter.inUse(p)).toBe(1);
  });

  it("counts each project on its own; -1 counts without refusing; 0 refuses all", async () => {
    const counter = make();
    const [p, q] = [project(), project()];
    expect(await counter.acquire(p, 1, lease)).toBeTypeOf("function");
    expect(await counter.acquire(q, 1, lease)).toBeTypeOf("function");
    for (let i = 0; i < 5; i++) expect(await counter.acquire(q, -1, lease)).toBeTypeOf("function");
    expect(await counter.inUse(q)).toBe(6);
    expect(await counter.acquire(project(), 0, lease)).toBeNull();
  });

  it("never overshoots under concurrent acquires", async () => {
    const counter = make();
    const p = project();
    const granted = await Promise.all(Array.from({ length: 40 }, () => counter.acquire(p, 7, lease)));
    expect(granted.filter((release) => release !== null)).toHaveLength(7);
    expect(await counter.inUse(p)).toBe(7);
  });
}

describe("in-memory in-flight counter", () => {
  behavesAsACounter(createMemoryInFlightCounter);
});

describe("Redis in-flight counter", () => {
  const clients: Redis[] = [];
  const connect = () => {
    const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    clients.push(client);
    return client;
  };
  afterAll(async () => {
    const cleaner = connect();
    const keys = await cleaner.keys(`${keyPrefix}*`);
    if (keys.length) await cleaner.del(...keys);
    for (const client of clients) client.disconnect();
  });

  behavesAsACounter(() => createRedisInFlightCounter(connect(), { keyPrefix, failOpen: false }));

  it("enforces one limit for two instances with their own Redis connections", async () => {
    const one = createRedisInFlightCounter(connect(), { keyPrefix, failOpen: false });
    const two = createRedisInFlightCounter(connect(), { keyPrefix, failOpen: false });
    const p = project();
    const granted = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).acquire(p, 5, lease)),
    );
    const releases = granted.filter((release) => release !== null);
    expect(releases).toHaveLength(5);
    expect(await one.inUse(p)).toBe(5);
    expect(await two.inUse(p)).toBe(5);
    expect(await two.acquire(p, 5, lease)).toBeNull();
    // A slot one instance gives back is the other's to take.
    releases[0]?.();
    await until(async () => (await two.inUse(p)) === 4, "the release seen by the other instance");
    expect(await two.acquire(p, 5, lease)).toBeTypeOf("function");
    expect(await one.acquire(p, 5, lease)).toBeNull();
  });

  it("frees the slots of an instance that died once their leases expire, and the key with them", async () => {
    const dying = connect();
    const survivor = connect();
    const dead = createRedisInFlightCounter(dying, { keyPrefix, failOpen: false });
    const alive = createRedisInFlightCounter(survivor, { keyPrefix, failOpen: false });
    const p = project();
    expect(await dead.acquire(p, 2, 300)).toBeTypeOf("function");
    expect(await dead.acquire(p, 2, 300)).toBeTypeOf("function");
    dying.disconnect(); // never releases
    expect(await alive.acquire(p, 2, lease)).toBeNull();
    await until(async () => (await alive.inUse(p)) === 0, "the leases to expire");
    const release = await alive.acquire(p, 2, 500);
    expect(release).toBeTypeOf("function");
    const ttl = await survivor.pttl(`${keyPrefix}${p}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(lease);
    await until(async () => (await survivor.exists(`${keyPrefix}${p}`)) === 0, "the key to expire");
  });

  describe("when Redis fails", () => {
    let silent: Server;
    const sockets: Socket[] = [];
    beforeAll(async () => {
      // Accepts connections and never answers: the slowest way for Redis to fail.
      silent = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    });
    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });
    const unanswered = () => {
      const client = new Redis((silent.address() as { port: number }).port, "127.0.0.1", {
        maxRetriesPerRequest: 0,
      });
      client.on("error", () => {});
      clients.push(client);
      return client;
    };

    it("fails open: the invocation runs uncounted, and the failure is reported", async () => {
      const errors: Error[] = [];
      const client = unanswered();
      const counter = createRedisInFlightCounter(client, {
        keyPrefix,
        failOpen: true,
        commandTimeoutMs: 100,
        onError: (error) => errors.push(error),
      });
      const release = await counter.acquire(project(), 1, lease);
      expect(release).toBeTypeOf("function");
      release?.();
      expect(errors[0]?.message).toMatch(/did not answer within 100 ms/);
    });

    it("fails closed: 503 with Retry-After", async () => {
      const client = unanswered();
      const counter = createRedisInFlightCounter(client, {
        keyPrefix,
        failOpen: false,
        commandTimeoutMs: 100,
      });
      const refusal = await (async () => counter.acquire(project(), 1, lease))().catch(
        (error: unknown) => error,
      );
      expect(refusal).toBeInstanceOf(ApiError);
      expect((refusal as ApiError).status).toBe(503);
      expect((refusal as ApiError).headers["Retry-After"]).toBe("1");
      await expect(counter.inUse(project())).rejects.toBeInstanceOf(ApiError);
    });
  });
});
