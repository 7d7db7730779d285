import type { Logger } from "../../lib/logger.ts";
import { discard, type KeystoneHttp, KeystoneUnavailableError, readJson } from "./http.ts";
import { expiryFromTokenBody } from "./token.ts";

/** Picasso's own identity: a user with the service (or admin) role, or an application credential. */
export type ServiceCredentials =
  | {
      kind: "password";
      username: string;
      password: string;
      userDomainName: string;
      projectName: string;
      projectDomainName: string;
    }
  | { kind: "application_credential"; id: string; secret: string };

/** Renew this long before expiry (or halfway through a shorter life), so no request sees it lapse. */
const renewalMarginMs = 120_000;

function authRequestBody(credentials: ServiceCredentials): string {
  if (credentials.kind === "application_credential") {
    return JSON.stringify({
      auth: {
        identity: {
          methods: ["application_credential"],
          application_credential: { id: credentials.id, secret: credentials.secret },
        },
      },
    });
  }
  return JSON.stringify({
    auth: {
      identity: {
        methods: ["password"],
        password: {
          user: {
            name: credentials.username,
            password: credentials.password,
            domain: { name: credentials.userDomainName },
          },
        },
      },
      scope: {
        project: { name: credentials.projectName, domain: { name: credentials.projectDomainName } },
      },
    },
  });
}

/**
 * Holds Picasso's service token: obtained on first use, reused until shortly before it expires,
 * renewed by one request however many callers need it at that moment.
 */
export class ServiceTokenSource {
  #current: { token: string; renewAt: number } | null = null;
  #pending: Promise<string> | null = null;

  constructor(
    private readonly http: KeystoneHttp,
    private readonly v3: string,
    private readonly credentials: ServiceCredentials,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  get(): Promise<string> {
    const current = this.#current;
    if (current && this.now() < current.renewAt) return Promise.resolve(current.token);
    this.#pending ??= this.#issue().finally(() => {
      this.#pending = null;
    });
    return this.#pending;
  }

  /** Forgets `token` after Keystone refused it (revoked, keys rotated): the next get() renews. */
  invalidate(token: string): void {
    if (this.#current?.token === token) this.#current = null;
  }

  async #issue(): Promise<string> {
    const response = await this.http.send(`${this.v3}/auth/tokens?nocatalog`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: authRequestBody(this.credentials),
    });
    if (response.status !== 201 && response.status !== 200) {
      await discard(response);
      if (response.status === 401 || response.status === 400 || response.status === 404) {
        this.logger.error("Keystone refused Picasso's service credentials; no token can be validated", {
          status: response.status,
          auth_method: this.credentials.kind,
        });
      }
      throw new KeystoneUnavailableError(`service token request answered ${response.status}`);
    }
    const token = response.headers.get("x-subject-token");
    const expiresAt = expiryFromTokenBody(await readJson(response));
    if (!token || !expiresAt) throw new KeystoneUnavailableError("service token answer has no token");
    const now = this.now();
    const lifetime = expiresAt.getTime() - now;
    const renewAt = now + Math.max(0, lifetime - Math.min(renewalMarginMs, lifetime / 2));
    this.#current = { token, renewAt };
    this.logger.info("obtained a Keystone service token", { expires_at: expiresAt.toISOString() });
    return token;
  }
}
