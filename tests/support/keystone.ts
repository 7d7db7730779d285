/**
 * Test helper for the real Keystone started by `scripts/keystone.sh start`.
 *
 * Tests talk HTTP to that Keystone (no mocks) so they exercise the same token validation path as
 * production. Every object gets a random name so test files can run in parallel against one Keystone.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Per request; generous because two gunicorn workers serve all parallel test files. */
const REQUEST_TIMEOUT_MS = 15_000;
/** Keystone's default domain; the script bootstraps everything there. */
const DEFAULT_DOMAIN = "default";

export interface KeystoneAdminCredentials {
  /** Identity v3 base URL, e.g. http://127.0.0.1:5000/v3 (no trailing slash). */
  url: string;
  username: string;
  password: string;
  project: string;
}

export interface KeystoneProject {
  id: string;
  name: string;
}

export interface KeystoneUser {
  id: string;
  name: string;
  password: string;
}

export interface KeystoneAppCredential {
  id: string;
  name: string;
  secret: string;
}

/** `'unscoped'` gives a token without roles: useful to test that the API rejects it. */
export type TokenScope = { projectId: string } | { domainId: string } | "unscoped";

/** The subset of Keystone's token body that tests look at. */
export interface KeystoneTokenBody {
  token: {
    expires_at: string;
    issued_at: string;
    methods: string[];
    user: { id: string; name: string; domain: { id: string; name: string } };
    project?: { id: string; name: string; domain: { id: string; name: string } };
    domain?: { id: string; name: string };
    roles?: { id: string; name: string }[];
  };
}

/** A project with one user per role, as most API tests need; tokens are project-scoped. */
export interface ProjectWithUsers {
  project: KeystoneProject;
  /** Has `member` (Keystone's implied roles add `reader` to the token). */
  member: KeystoneUser & { token: string };
  /** Has `reader` only. */
  reader: KeystoneUser & { token: string };
}

/** Carries the HTTP status so tests can assert on it; the message never contains request bodies. */
export class KeystoneError extends Error {
  override readonly name = "KeystoneError";
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`Keystone ${method} ${path} -> ${status}: ${body.trim().slice(0, 500)}`);
  }
}

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

function readStateFile(dir: string, name: string): string | undefined {
  try {
    return readFileSync(resolve(dir, name), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Admin credentials: environment first (CI, or `eval "$(scripts/keystone.sh env)"`), else the state
 * directory written by scripts/keystone.sh, so a plain `npx vitest` works after `keystone.sh start`.
 */
export function readKeystoneAdmin(): KeystoneAdminCredentials {
  const stateDir = resolve(repoRoot, process.env.KEYSTONE_STATE_DIR || ".state/keystone");
  const url = process.env.KEYSTONE_URL || readStateFile(stateDir, "url") || "http://127.0.0.1:5000/v3";
  const password = process.env.KEYSTONE_ADMIN_PASSWORD || readStateFile(stateDir, "admin_password");
  if (!password) {
    throw new Error(
      `No Keystone admin password: set KEYSTONE_ADMIN_PASSWORD or run "scripts/keystone.sh start" (state dir ${stateDir})`,
    );
  }
  return {
    url: url.replace(/\/+$/, ""),
    username: process.env.KEYSTONE_ADMIN_USER || "admin",
    password,
    project: process.env.KEYSTONE_ADMIN_PROJECT || "admin",
  };
}

/** Random, unique and recognisable as test data when someone lists Keystone objects by hand. */
export function uniqueName(prefix = "picasso-test"): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

function randomPassword(): string {
  return randomBytes(18).toString("base64url");
}

interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Statuses that are returned to the caller instead of thrown. */
  allow?: number[];
}

async function keystoneFetch(
  baseUrl: string,
  path: string,
  options: RequestOptions = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const method = options.method ?? "GET";
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    // Usually "Keystone is not running"; say how to fix it, not just "fetch failed".
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new Error(
      `Keystone ${method} ${baseUrl}${path} failed (${reason}); is it running? scripts/keystone.sh start`,
      { cause: error },
    );
  }
  const text = await response.text();
  if (!response.ok && !options.allow?.includes(response.status)) {
    throw new KeystoneError(method, path, response.status, text);
  }
  return { status: response.status, headers: response.headers, text };
}

function passwordAuthBody(username: string, password: string, scope: TokenScope | { projectName: string }) {
  const identity = {
    methods: ["password"],
    password: { user: { name: username, domain: { id: DEFAULT_DOMAIN }, password } },
  };
  if (scope === "unscoped") return { auth: { identity } };
  if ("projectId" in scope) return { auth: { identity, scope: { project: { id: scope.projectId } } } };
  if ("domainId" in scope) return { auth: { identity, scope: { domain: { id: scope.domainId } } } };
  return {
    auth: { identity, scope: { project: { name: scope.projectName, domain: { id: DEFAULT_DOMAIN } } } },
  };
}

async function postToken(baseUrl: string, body: unknown): Promise<string> {
  // nocatalog: tests never need the catalog and it is most of the response.
  const res = await keystoneFetch(baseUrl, "/auth/tokens?nocatalog", { method: "POST", body });
  const token = res.headers.get("x-subject-token");
  if (!token) throw new KeystoneError("POST", "/auth/tokens", res.status, "no X-Subject-Token header");
  return token;
}

/**
 * Admin session against the test Keystone. Holds a project-scoped admin token and renews it once on
 * 401, so a long test run outlives the token's one-hour lifetime.
 */
export class KeystoneAdmin {
  readonly url: string;
  #credentials: KeystoneAdminCredentials;
  #token: string;
  #roleIds = new Map<string, string>();

  private constructor(credentials: KeystoneAdminCredentials, token: string) {
    this.url = credentials.url;
    this.#credentials = credentials;
    this.#token = token;
  }

  /** Password auth as the bootstrap admin, scoped to the admin project. */
  static async connect(credentials: KeystoneAdminCredentials = readKeystoneAdmin()): Promise<KeystoneAdmin> {
    const token = await postToken(
      credentials.url,
      passwordAuthBody(credentials.username, credentials.password, { projectName: credentials.project }),
    );
    return new KeystoneAdmin(credentials, token);
  }

  /** The admin token, for tests that call Keystone (or the API) as a cloud admin. */
  get token(): string {
    return this.#token;
  }

  async #request(path: string, options: RequestOptions = {}) {
    const send = () =>
      keystoneFetch(this.url, path, {
        ...options,
        headers: { "X-Auth-Token": this.#token, ...options.headers },
        allow: [...(options.allow ?? []), 401],
      });
    let res = await send();
    if (res.status === 401 && !options.allow?.includes(401)) {
      this.#token = (await KeystoneAdmin.connect(this.#credentials)).#token;
      res = await send();
      if (res.status === 401) throw new KeystoneError(options.method ?? "GET", path, res.status, res.text);
    }
    return res;
  }

  async #json<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return JSON.parse((await this.#request(path, options)).text) as T;
  }

  async createProject(
    name: string = uniqueName(),
    domainId: string = DEFAULT_DOMAIN,
  ): Promise<KeystoneProject> {
    const { project } = await this.#json<{ project: KeystoneProject }>("/projects", {
      method: "POST",
      body: { project: { name, domain_id: domainId, enabled: true, description: "picasso test" } },
    });
    return { id: project.id, name: project.name };
  }

  async createUser(
    opts: { name?: string; password?: string; domainId?: string; defaultProjectId?: string } = {},
  ): Promise<KeystoneUser> {
    const name = opts.name ?? uniqueName("picasso-user");
    const password = opts.password ?? randomPassword();
    const { user } = await this.#json<{ user: { id: string; name: string } }>("/users", {
      method: "POST",
      body: {
        user: {
          name,
          password,
          domain_id: opts.domainId ?? DEFAULT_DOMAIN,
          enabled: true,
          ...(opts.defaultProjectId ? { default_project_id: opts.defaultProjectId } : {}),
        },
      },
    });
    return { id: user.id, name: user.name, password };
  }

  /**
   * Role id by name, creating the role if missing. Bootstrap already made admin, member and reader;
   * `service` and custom roles are created on first use. Safe when parallel test files race (409).
   */
  async ensureRole(name: string): Promise<string> {
    const cached = this.#roleIds.get(name);
    if (cached) return cached;
    const find = async () => {
      const { roles } = await this.#json<{ roles: { id: string; name: string }[] }>(
        `/roles?name=${encodeURIComponent(name)}`,
      );
      return roles.find((r) => r.name === name)?.id;
    };
    let id = await find();
    if (!id) {
      const res = await this.#request("/roles", { method: "POST", body: { role: { name } }, allow: [409] });
      id = res.status === 409 ? await find() : (JSON.parse(res.text) as { role: { id: string } }).role.id;
    }
    if (!id) throw new Error(`Keystone role ${name} neither found nor created`);
    this.#roleIds.set(name, id);
    return id;
  }

  async grant(projectId: string, userId: string, roleName: string): Promise<void> {
    const roleId = await this.ensureRole(roleName);
    await this.#request(`/projects/${projectId}/users/${userId}/roles/${roleId}`, { method: "PUT" });
  }

  async grantDomain(domainId: string, userId: string, roleName: string): Promise<void> {
    const roleId = await this.ensureRole(roleName);
    await this.#request(`/domains/${domainId}/users/${userId}/roles/${roleId}`, { method: "PUT" });
  }

  /** Password auth for any user of the default domain; returns the X-Subject-Token. */
  async issueToken(opts: { username: string; password: string; scope: TokenScope }): Promise<string> {
    return postToken(this.url, passwordAuthBody(opts.username, opts.password, opts.scope));
  }

  /** Token from an application credential; it is scoped to the credential's project by Keystone. */
  async issueAppCredentialToken(credential: { id: string; secret: string }): Promise<string> {
    return postToken(this.url, {
      auth: {
        identity: {
          methods: ["application_credential"],
          application_credential: { id: credential.id, secret: credential.secret },
        },
      },
    });
  }

  /**
   * GET /v3/auth/tokens?nocatalog, authenticated by `authToken` (default: the admin token). Returns the
   * status instead of throwing on 401/403/404 because tests assert on exactly those.
   */
  async validateToken(
    subjectToken: string,
    authToken: string = this.#token,
  ): Promise<{ status: number; body?: KeystoneTokenBody }> {
    const res = await keystoneFetch(this.url, "/auth/tokens?nocatalog", {
      headers: { "X-Auth-Token": authToken, "X-Subject-Token": subjectToken },
      allow: [401, 403, 404],
    });
    return res.status === 200
      ? { status: res.status, body: JSON.parse(res.text) as KeystoneTokenBody }
      : { status: res.status };
  }

  async revokeToken(token: string): Promise<void> {
    await this.#request("/auth/tokens", { method: "DELETE", headers: { "X-Subject-Token": token } });
  }

  /**
   * Keystone only lets users create their own application credentials, so this authenticates as the
   * user (password + project scope); the credential inherits that project and, by default, all the
   * user's roles on it.
   */
  async createAppCredential(
    user: { id: string; name: string; password: string },
    projectId: string,
    opts: { name?: string; roles?: string[]; expiresAt?: Date } = {},
  ): Promise<KeystoneAppCredential> {
    const userToken = await this.issueToken({
      username: user.name,
      password: user.password,
      scope: { projectId },
    });
    const name = opts.name ?? uniqueName("picasso-appcred");
    const res = await keystoneFetch(this.url, `/users/${user.id}/application_credentials`, {
      method: "POST",
      headers: { "X-Auth-Token": userToken },
      body: {
        application_credential: {
          name,
          ...(opts.roles ? { roles: opts.roles.map((r) => ({ name: r })) } : {}),
          ...(opts.expiresAt ? { expires_at: opts.expiresAt.toISOString() } : {}),
        },
      },
    });
    const { application_credential: ac } = JSON.parse(res.text) as {
      application_credential: { id: string; name: string; secret: string };
    };
    return { id: ac.id, name: ac.name, secret: ac.secret };
  }

  /** Keystone refuses to delete an enabled project; disable first. 404 is fine (already gone). */
  async deleteProject(projectId: string): Promise<void> {
    await this.#request(`/projects/${projectId}`, {
      method: "PATCH",
      body: { project: { enabled: false } },
      allow: [404],
    });
    await this.#request(`/projects/${projectId}`, { method: "DELETE", allow: [404] });
  }

  async deleteUser(userId: string): Promise<void> {
    await this.#request(`/users/${userId}`, { method: "DELETE", allow: [404] });
  }

  /**
   * A fresh project with a `member` user and a `reader` user, and a project-scoped token for each:
   * the usual cast of an API authorization test.
   */
  async createProjectWithUsers(projectName?: string): Promise<ProjectWithUsers> {
    const project = await this.createProject(projectName);
    const [member, reader] = await Promise.all([this.createUser(), this.createUser()]);
    await Promise.all([
      this.grant(project.id, member.id, "member"),
      this.grant(project.id, reader.id, "reader"),
    ]);
    const [memberToken, readerToken] = await Promise.all([
      this.issueToken({ username: member.name, password: member.password, scope: { projectId: project.id } }),
      this.issueToken({ username: reader.name, password: reader.password, scope: { projectId: project.id } }),
    ]);
    return {
      project,
      member: { ...member, token: memberToken },
      reader: { ...reader, token: readerToken },
    };
  }
}
