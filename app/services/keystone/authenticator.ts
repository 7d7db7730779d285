import { hash } from "node:crypto";
import { LRUCache } from "lru-cache";
import { ApiError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logger.ts";
import type { Identity } from "../../types.ts";
import type { Authenticator } from "../auth/types.ts";
import type { Metrics } from "../metrics/index.ts";
import { parseKeystoneEndpoint } from "./endpoint.ts";
import {
  createKeystoneHttp,
  discard,
  type KeystoneFetch,
  type KeystoneResponse,
  KeystoneUnavailableError,
  readJson,
} from "./http.ts";
import { type ServiceCredentials, ServiceTokenSource } from "./service-token.ts";
import { identityFromTokenBody } from "./token.ts";

export type KeystoneAuthenticatorOptions = {
  /** Keystone's endpoint, with or without `/v3`. */
  endpoint: string;
  /** Validate with Picasso's own token; without, each token validates itself. */
  serviceCredentials?: ServiceCredentials;
  logger: Logger;
  /** Total time one Keystone request may take. Default 5 s. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** How long a valid token is trusted without asking again (capped by its expiry); 0 disables caching. */
  cacheTtlMs?: number;
  cacheSize?: number;
  /** How long a token Keystone rejected stays rejected without asking again (capped by cacheTtlMs). */
  invalidCacheTtlMs?: number;
  /** Where to count Keystone requests and cache hits (the app's metrics); optional in tests. */
  metrics?: Pick<Metrics, "keystoneRequests" | "tokenCache">;
  /** Replaces the HTTP client, e.g. to count the calls that reach Keystone. */
  fetch?: KeystoneFetch;
  /** Milliseconds since the epoch; tests move it to expire cache entries. */
  now?: () => number;
};

type Validation = { valid: true; identity: Identity } | { valid: false };

/** Fernet tokens are about 200 characters; anything far longer or not printable ASCII is no token. */
const maxTokenLength = 8192;
const wellFormedToken = /^[\x21-\x7e]+$/;

const unauthorized = (message: string) => new ApiError("unauthorized", message);
const invalidToken = () => unauthorized("The token in X-Auth-Token is invalid, expired or revoked");
const unavailable = () =>
  new ApiError("service_unavailable", "The identity service is unavailable; try again later", {
    headers: { "Retry-After": "5" },
  });

/** Cache keys: a leaked heap dump or debug log shows hashes, never a usable token. */
const tokenKey = (token: string) => hash("sha256", token, "base64url");

/**
 * Validates Keystone tokens the way keystonemiddleware does (`GET /v3/auth/tokens` with the token
 * as `X-Subject-Token`), remembering answers: valid tokens until the sooner of their expiry and
 * `cacheTtlMs`, rejected ones briefly; concurrent requests with the same new token share one call.
 */
export class KeystoneAuthenticator implements Authenticator {
  readonly kind = "keystone" as const;
  readonly wwwAuthenticate: string;
  readonly #endpoint;
  readonly #http;
  readonly #serviceTokens: ServiceTokenSource | undefined;
  readonly #cache: LRUCache<string, Validation, string> | undefined;
  readonly #invalidTtlMs: number;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #metrics: KeystoneAuthenticatorOptions["metrics"];

  constructor(options: KeystoneAuthenticatorOptions) {
    this.#endpoint = parseKeystoneEndpoint(options.endpoint);
    this.wwwAuthenticate = `Keystone uri="${this.#endpoint.base}"`;
    this.#logger = options.logger.child({ component: "keystone" });
    this.#now = options.now ?? Date.now;
    this.#http = createKeystoneHttp({
      timeoutMs: options.timeoutMs ?? 5000,
      connectTimeoutMs: options.connectTimeoutMs ?? 3000,
      fetchImpl: options.fetch,
      onOutcome: (outcome) => options.metrics?.keystoneRequests.inc({ outcome }),
    });
    this.#metrics = options.metrics;
    this.#serviceTokens = options.serviceCredentials
      ? new ServiceTokenSource(
          this.#http,
          this.#endpoint.v3,
          options.serviceCredentials,
          this.#logger,
          this.#now,
        )
      : undefined;
    const ttlMs = options.cacheTtlMs ?? 300_000;
    this.#invalidTtlMs = Math.min(options.invalidCacheTtlMs ?? 10_000, ttlMs);
    if (ttlMs > 0) {
      const now = this.#now;
      this.#cache = new LRUCache<string, Validation, string>({
        max: options.cacheSize ?? 10_000,
        ttl: ttlMs,
        perf: { now },
        // Check expiry against the clock on every read, not a value remembered for a tick.
        ttlResolution: 0,
        // An in-flight validation whose entry is evicted (a burst of new tokens larger than the
        // cache) must still answer the requests waiting for it, not reject them with "evicted".
        ignoreFetchAbort: true,
        fetchMethod: async (_key, _stale, { options: entry, context: token }) => {
          const validation = await this.#validate(token);
          // A per-entry ttl of 0 means "forever" to lru-cache; undefined means "store nothing".
          if (!validation.valid) {
            if (this.#invalidTtlMs === 0) return undefined;
            entry.ttl = this.#invalidTtlMs;
            return validation;
          }
          const lifetime = validation.identity.expiresAt.getTime() - now();
          if (lifetime <= 0) return undefined;
          entry.ttl = Math.min(ttlMs, lifetime);
          return validation;
        },
      });
    }
  }

  get mode(): "service" | "self" {
    return this.#serviceTokens ? "service" : "self";
  }

  async authenticate(token: string | undefined, _projectId?: string): Promise<Identity> {
    const presented = token?.trim();
    if (!presented) throw unauthorized("Authentication required: send a Keystone token in X-Auth-Token");
    if (presented.length > maxTokenLength || !wellFormedToken.test(presented)) throw invalidToken();
    let validation: Validation | undefined;
    if (this.#cache) {
      const key = tokenKey(presented);
      // A token seen before is answered from memory without the fetch machinery (most requests).
      validation = this.#cache.get(key);
      if (validation) {
        this.#metrics?.tokenCache.inc({ result: "hit" });
      } else {
        const status: LRUCache.Status<string, Validation, string> = {};
        try {
          validation = await this.#cache.fetch(key, { context: presented, status });
        } finally {
          // Only the request that sent the validation counts as a miss: requests that joined its
          // in-flight call were answered without asking Keystone themselves.
          this.#metrics?.tokenCache.inc({ result: status.fetchDispatched ? "miss" : "hit" });
        }
      }
    } else {
      this.#metrics?.tokenCache.inc({ result: "miss" });
      validation = await this.#validate(presented);
    }
    if (!validation?.valid || validation.identity.expiresAt.getTime() <= this.#now()) throw invalidToken();
    return validation.identity;
  }

  /** Resolves when Keystone's API answers; for readiness checks. */
  async ping(signal?: AbortSignal): Promise<void> {
    const response = await this.#http.send(
      `${this.#endpoint.v3}`,
      { method: "GET", headers: { accept: "application/json" } },
      signal,
    );
    await discard(response);
    if (response.status !== 200) throw new KeystoneUnavailableError(`Keystone answered ${response.status}`);
  }

  /**
   * Obtains the service token ahead of the first request and says in the log whether Keystone
   * can be reached; never throws, since Picasso must start while Keystone is down.
   */
  async warmUp(): Promise<void> {
    try {
      if (this.#serviceTokens) await this.#serviceTokens.get();
      else await this.ping();
      this.#logger.info("Keystone reachable", { endpoint: this.#endpoint.v3, mode: this.mode });
    } catch (error) {
      this.#logger.warn("Keystone not reachable yet; requests get 503 until it is", {
        endpoint: this.#endpoint.v3,
        error: (error as Error).message,
      });
    }
  }

  async close(): Promise<void> {
    this.#cache?.clear();
    await this.#http.close();
  }

  async #validate(token: string): Promise<Validation> {
    try {
      if (!this.#serviceTokens) {
        const response = await this.#ask(token, token);
        // 401: the token could not even authenticate its own validation request.
        return await this.#interpret(response, [401, 404]);
      }
      let serviceToken = await this.#serviceTokens.get();
      let response = await this.#ask(serviceToken, token);
      if (response.status === 401) {
        // Our token was refused (revoked, fernet keys rotated): renew once and retry.
        await discard(response);
        this.#serviceTokens.invalidate(serviceToken);
        serviceToken = await this.#serviceTokens.get();
        response = await this.#ask(serviceToken, token);
      }
      if (response.status === 401 || response.status === 403) {
        await discard(response);
        this.#logger.error("Keystone refused Picasso's service token for validating tokens", {
          status: response.status,
          hint: "the service user needs the service or admin role",
        });
        throw new KeystoneUnavailableError(`validation with the service token answered ${response.status}`);
      }
      return await this.#interpret(response, [404]);
    } catch (error) {
      if (error instanceof KeystoneUnavailableError) {
        this.#logger.warn("cannot validate a token: Keystone unavailable", {
          endpoint: this.#endpoint.v3,
          error: error.message,
        });
        throw unavailable();
      }
      throw error;
    }
  }

  #ask(authToken: string, subjectToken: string) {
    return this.#http.send(`${this.#endpoint.v3}/auth/tokens?nocatalog`, {
      method: "GET",
      headers: { accept: "application/json", "x-auth-token": authToken, "x-subject-token": subjectToken },
    });
  }

  async #interpret(response: KeystoneResponse, rejections: number[]): Promise<Validation> {
    if (response.status === 200) {
      const identity = identityFromTokenBody(await readJson(response));
      if (!identity) throw new KeystoneUnavailableError("validation answer is not a token");
      if (identity.expiresAt.getTime() <= this.#now()) return { valid: false };
      return { valid: true, identity };
    }
    await discard(response);
    // 400: Keystone could not even parse the token, which makes it no better than unknown.
    if (rejections.includes(response.status) || response.status === 400) return { valid: false };
    throw new KeystoneUnavailableError(`validation answered ${response.status}`);
  }
}
