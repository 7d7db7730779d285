// The validation cache, counted at the HTTP client: every call counted here reached the real Keystone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../../app/lib/logger.ts";
import {
  KeystoneAuthenticator,
  type KeystoneAuthenticatorOptions,
} from "../../../app/services/keystone/index.ts";
import { createMetrics } from "../../../app/services/metrics/index.ts";
import { KeystoneAdmin, type ProjectWithUsers } from "../../support/keystone.ts";
import {
  counterValue,
  countingFetch,
  movableClock,
  removeQuietly,
  testKeystoneTimeoutMs,
} from "../../support/keystone-calls.ts";

let admin: KeystoneAdmin;
let cast: ProjectWithUsers;
const authenticators: KeystoneAuthenticator[] = [];

function counted(options: Partial<KeystoneAuthenticatorOptions> = {}) {
  const counter = countingFetch();
  const keystone = new KeystoneAuthenticator({
    endpoint: admin.url,
    timeoutMs: testKeystoneTimeoutMs,
    logger: silentLogger,
    fetch: counter.fetch,
    ...options,
  });
  authenticators.push(keystone);
  return { keystone, counter };
}

const issueMemberToken = () =>
  admin.issueToken({
    username: cast.member.name,
    password: cast.member.password,
    scope: { projectId: cast.project.id },
  });

beforeAll(async () => {
  admin = await KeystoneAdmin.connect();
  cast = await admin.createProjectWithUsers();
});

afterAll(async () => {
  await Promise.all(authenticators.map((created) => created.close()));
  await removeQuietly(admin, { users: [cast.member.id, cast.reader.id], projects: [cast.project.id] });
});

describe("token cache", () => {
  it("asks Keystone once for 100 sequential requests with one token", async () => {
    const { keystone, counter } = counted();
    for (let i = 0; i < 100; i++) {
      expect((await keystone.authenticate(cast.member.token, cast.project.id)).userId).toBe(cast.member.id);
    }
    expect(counter.validations()).toBe(1);
  });

  it("asks Keystone once for 50 concurrent first requests with one token", async () => {
    const { keystone, counter } = counted();
    const identities = await Promise.all(
      Array.from({ length: 50 }, () => keystone.authenticate(cast.reader.token, cast.project.id)),
    );
    expect(new Set(identities.map((identity) => identity.userId))).toEqual(new Set([cast.reader.id]));
    expect(counter.validations()).toBe(1);
  });

  it("shares one rejection among concurrent requests with the same bad token", async () => {
    const { keystone, counter } = counted();
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => keystone.authenticate("no-such-token", undefined)),
    );
    expect(results.every((result) => result.status === "rejected")).toBe(true);
    expect(counter.validations()).toBe(1);
  });

  it("asks again once the TTL has passed", async () => {
    const clock = movableClock();
    const { keystone, counter } = counted({ cacheTtlMs: 30_000, now: clock.now });
    await keystone.authenticate(cast.member.token, undefined);
    clock.advance(29_000);
    await keystone.authenticate(cast.member.token, undefined);
    expect(counter.validations()).toBe(1);
    clock.advance(2_000);
    await keystone.authenticate(cast.member.token, undefined);
    expect(counter.validations()).toBe(2);
  });

  it("never trusts a cached token past its expires_at, whatever the TTL", async () => {
    const clock = movableClock();
    const { keystone, counter } = counted({ cacheTtlMs: 10 * 3_600_000, now: clock.now });
    const identity = await keystone.authenticate(cast.member.token, undefined);
    // Move past the token's own expiry: the entry is gone, and Keystone's answer (still valid by
    // Keystone's real clock) is refused because the token has expired by ours.
    clock.advance(identity.expiresAt.getTime() - Date.now() + 1_000);
    await expect(keystone.authenticate(cast.member.token, undefined)).rejects.toMatchObject({ status: 401 });
    expect(counter.validations()).toBe(2);
  });

  it("remembers a rejected token only briefly", async () => {
    const clock = movableClock();
    const { keystone, counter } = counted({ invalidCacheTtlMs: 10_000, now: clock.now });
    for (let i = 0; i < 5; i++) {
      await expect(keystone.authenticate("bogus-token", undefined)).rejects.toMatchObject({ status: 401 });
    }
    expect(counter.validations()).toBe(1);
    clock.advance(11_000);
    await expect(keystone.authenticate("bogus-token", undefined)).rejects.toMatchObject({ status: 401 });
    expect(counter.validations()).toBe(2);
  });

  it("asks every time when the TTL is 0", async () => {
    const { keystone, counter } = counted({ cacheTtlMs: 0 });
    for (let i = 0; i < 3; i++) await keystone.authenticate(cast.member.token, undefined);
    for (let i = 0; i < 2; i++) await keystone.authenticate("bogus-token", undefined).catch(() => {});
    expect(counter.validations()).toBe(5);
  });

  it("evicts the least recently used token when full", async () => {
    const { keystone, counter } = counted({ cacheSize: 2 });
    const third = await issueMemberToken();
    await keystone.authenticate(cast.member.token, undefined);
    await keystone.authenticate(cast.reader.token, undefined);
    await keystone.authenticate(cast.member.token, undefined);
    expect(counter.validations()).toBe(2);
    // A third token pushes out the least recently used one: the reader's.
    await keystone.authenticate(third, undefined);
    await keystone.authenticate(cast.member.token, undefined);
    expect(counter.validations()).toBe(3);
    await keystone.authenticate(cast.reader.token, undefined);
    expect(counter.validations()).toBe(4);
  });

  it("answers every request when more new tokens arrive at once than the cache holds", async () => {
    const { keystone } = counted({ cacheSize: 2 });
    const tokens = await Promise.all(Array.from({ length: 6 }, () => issueMemberToken()));
    const identities = await Promise.all(tokens.map((token) => keystone.authenticate(token, undefined)));
    expect(identities.map((identity) => identity.userId)).toEqual(tokens.map(() => cast.member.id));
  });

  it("counts cache hits and misses and Keystone's answers in the app's metrics", async () => {
    const metrics = createMetrics();
    const { keystone, counter } = counted({ metrics });
    for (let i = 0; i < 10; i++) await keystone.authenticate(cast.member.token, undefined);
    await Promise.all(
      Array.from({ length: 5 }, () => keystone.authenticate("bogus-token", undefined).catch(() => {})),
    );
    expect(counter.validations()).toBe(2);
    const cache = (result: string) => counterValue(metrics.registry, "picasso_token_cache_total", { result });
    const keystoneAnswers = (outcome: string) =>
      counterValue(metrics.registry, "picasso_keystone_requests_total", { outcome });
    expect(await cache("miss")).toBe(2);
    expect(await cache("hit")).toBe(13);
    expect(await keystoneAnswers("success")).toBe(1);
    expect(await keystoneAnswers("rejected")).toBe(1);
    expect(await keystoneAnswers("error")).toBe(0);
  });

  it("does not cache a failure to reach Keystone", async () => {
    let failing = true;
    const counter = countingFetch();
    const keystone = new KeystoneAuthenticator({
      endpoint: admin.url,
      timeoutMs: testKeystoneTimeoutMs,
      logger: silentLogger,
      fetch: (url, init) =>
        failing ? Promise.reject(new TypeError("fetch failed")) : counter.fetch(url, init),
    });
    authenticators.push(keystone);
    await expect(keystone.authenticate(cast.member.token, undefined)).rejects.toMatchObject({ status: 503 });
    failing = false;
    expect((await keystone.authenticate(cast.member.token, undefined)).userId).toBe(cast.member.id);
    expect(counter.validations()).toBe(1);
  });
});
