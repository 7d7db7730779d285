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
