import { createMiddleware } from "hono/factory";
import { ApiError } from "../../lib/errors.ts";
import type { AppEnv, Identity } from "../../types.ts";

/** `read`: GET/HEAD of a project's resources; `write`: create, update, delete, invoke private. */
export type Action = "read" | "write";

/**
 * Authenticates the request's token and checks it may perform `action` on the `{project_id}` in
 * the path: scoped to that project with a sufficient role, or admin. Sets `c.var.identity`.
 * Failure answers 401 (no or bad token) or 403 (other project, too weak a role) and reveals
 * nothing about the project.
 */
export function authorize(action: Action | ((method: string) => Action) = methodAction) {
  return createMiddleware<AppEnv>(async function authorizeMiddleware(c, next) {
    const { authenticator, roleNames } = c.var.services;
    const projectId = c.req.param("project_id");
    let identity: Identity;
    try {
      identity = await authenticator.authenticate(c.req.header("x-auth-token"), projectId);
    } catch (error) {
      if (error instanceof ApiError && error.code === "unauthorized" && authenticator.wwwAuthenticate) {
        throw new ApiError("unauthorized", error.message, {
          headers: { ...error.headers, "WWW-Authenticate": authenticator.wwwAuthenticate },
        });
      }
      throw error;
    }
    c.set("identity", identity);
    const needed = typeof action === "function" ? action(c.req.method) : action;
    const roles = new Set(identity.roles);
    const isAdmin = roles.has(roleNames.admin);
    if (!isAdmin) {
      if (!projectId || identity.projectId !== projectId) {
        throw new ApiError("forbidden", "The token is not scoped to this project");
      }
      const allowed =
        needed === "read"
          ? roles.has(roleNames.reader) || roles.has(roleNames.member)
          : roles.has(roleNames.member);
      if (!allowed) {
        throw new ApiError(
          "forbidden",
          needed === "read"
            ? `Role ${roleNames.reader} or ${roleNames.member} is required`
            : `Role ${roleNames.member} is required`,
        );
      }
    }
    await next();
  });
}

export function methodAction(method: string): Action {
  return method === "GET" || method === "HEAD" ? "read" : "write";
}
