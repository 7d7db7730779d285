import { createMiddleware } from "hono/factory";
import { ApiError } from "../../lib/errors.ts";
import type { RoleNames } from "../../services/auth/types.ts";
import type { AppEnv, AppServices, Identity } from "../../types.ts";

/**
 * `read`: GET/HEAD of a project's resources; `write`: create, update, delete, invoke private;
 * `admin`: what only the cloud's operators may do to a project (set its quotas).
 */
export type Action = "read" | "write" | "admin";

/**
 * Authenticates the request's token and checks it may perform `action` on the `{project_id}` in
 * the path: scoped to that project with a sufficient role, or admin. Sets `c.get("identity")` and
 * adds `user_id`/`project_id` to the request's logger.
 *
 * 401 (with `WWW-Authenticate`) for a missing, malformed, expired or revoked token; 503 when
 * Keystone cannot say; 403 for a valid token that may not do this here. The 403 messages are the
 * same whether or not the project exists, so they reveal nothing about it.
 *
 * Admin: only a token scoped to some project and carrying the admin role acts on any project
 * (OpenStack's legacy "admin is admin everywhere" for project-scoped tokens). A domain-, system-
 * or unscoped token carrying admin gets no project access: it is not scoped to the project.
 */
export function authorize(action: Action | ((method: string) => Action) = methodAction) {
  return createMiddleware<AppEnv>(async function authorizeMiddleware(c, next) {
    const services = c.get("services");
    const projectId = c.req.param("project_id");
    const identity = await authenticateToken(services, c.req.header("x-auth-token"), projectId);
    c.set("identity", identity);
    c.set("log", c.get("log").child({ user_id: identity.userId, project_id: identity.projectId }));

    const needed = typeof action === "function" ? action(c.req.method) : action;
    const refusal = checkAccess(identity, projectId, needed, services.roleNames);
    if (refusal) throw new ApiError("forbidden", refusal);
    await next();
  });
}

/**
 * Who the token belongs to, or the 401/503 ApiError to answer (a 401 names the scheme in
 * `WWW-Authenticate` when the authenticator has one). Exported for Node's pre-routed invocations,
 * which run outside Hono's middleware chain.
 */
export async function authenticateToken(
  { authenticator }: Pick<AppServices, "authenticator">,
  token: string | undefined,
  projectId: string | undefined,
): Promise<Identity> {
  try {
    return await authenticator.authenticate(token, projectId);
  } catch (error) {
    if (error instanceof ApiError && error.code === "unauthorized" && authenticator.wwwAuthenticate) {
      throw new ApiError("unauthorized", error.message, {
        headers: { ...error.headers, "WWW-Authenticate": authenticator.wwwAuthenticate },
      });
    }
    throw error;
  }
}

/** Why `identity` may not do `needed` on `projectId`, or null when it may. */
export function checkAccess(
  identity: Identity,
  projectId: string | undefined,
  needed: Action,
  roleNames: RoleNames,
): string | null {
  const { roles } = identity;
  if (identity.projectId !== null && hasRole(roles, roleNames.admin)) return null;
  if (!projectId || identity.projectId !== projectId) return "The token is not scoped to this project";
  // A project's own members, however strong their role, cannot raise its quotas.
  if (needed === "admin") return `Role ${roleNames.admin} is required`;
  if (needed === "read") {
    return hasRole(roles, roleNames.reader) || hasRole(roles, roleNames.member)
      ? null
      : `Role ${roleNames.reader} or ${roleNames.member} is required`;
  }
  return hasRole(roles, roleNames.member) ? null : `Role ${roleNames.member} is required`;
}

/** Role names compare as oslo.policy compares them: case-insensitively. */
function hasRole(roles: readonly string[], wanted: string): boolean {
  const name = wanted.toLowerCase();
  for (const role of roles) if (role.toLowerCase() === name) return true;
  return false;
}

export function methodAction(method: string): Action {
  return method === "GET" || method === "HEAD" ? "read" : "write";
}
