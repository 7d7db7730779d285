import type { Registry } from "prom-client";
import type { KeystoneFetch } from "../../app/services/keystone/index.ts";

export type KeystoneCall = { method: string; url: string; authToken: string | undefined };

/** Real HTTP to Keystone through global fetch, recording each call so tests can count them. */
export function countingFetch() {
  const calls: KeystoneCall[] = [];
  const fetchImpl: KeystoneFetch = (url, init) => {
    calls.push({ method: init.method, url, authToken: init.headers["x-auth-token"] });
    return fetch(url, init);
  };
  const isValidation = (call: KeystoneCall) => call.method === "GET" && call.url.includes("/auth/tokens");
  const isIssue = (call: KeystoneCall) => call.method === "POST" && call.url.includes("/auth/tokens");
  return {
    fetch: fetchImpl,
    calls,
    validations: () => calls.filter(isValidation).length,
    issues: () => calls.filter(isIssue).length,
  };
}

/** A clock the test moves forward to expire cache entries without waiting. */
export function movableClock() {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (ms: number) => {
      offset += ms;
    },
  };
}

/**
 * Per-request limit for authenticators in tests: the shared test Keystone (two workers) serves
 * every parallel test file, so the production default of 5 s could turn a slow moment into a 503.
 */
export const testKeystoneTimeoutMs = 15_000;

/** The value of one labelled series of a counter in `registry`, 0 if it does not exist. */
export async function counterValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const series = values.find((value) =>
    Object.entries(labels).every(([key, wanted]) => value.labels[key] === wanted),
  );
  return series?.value ?? 0;
}

/**
 * Deletes test users and projects, ignoring failures: the shared SQLite test Keystone now and then
 * answers 500 ("database is locked") to deletions under parallel load, and a leftover object with
 * a random name harms no test. Assertions never depend on this.
 */
export async function removeQuietly(
  admin: { deleteUser(id: string): Promise<void>; deleteProject(id: string): Promise<void> },
  objects: { users?: string[]; projects?: string[] },
): Promise<void> {
  for (const id of objects.users ?? []) await admin.deleteUser(id).catch(() => {});
  for (const id of objects.projects ?? []) await admin.deleteProject(id).catch(() => {});
}
