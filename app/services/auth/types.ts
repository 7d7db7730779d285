import type { Identity } from "../../types.ts";

/**
 * Turns the `X-Auth-Token` of a request into an identity. Implementations: Keystone (validates
 * and caches) and noauth (development only: trusts the project in the URL).
 */
export interface Authenticator {
  readonly kind: "keystone" | "noauth";
  /**
   * Resolves the identity for `token`, or throws ApiError: `unauthorized` (missing, malformed,
   * expired, revoked) or `service_unavailable` (Keystone unreachable, token not cached).
   * `projectId` is the project in the URL, used only by noauth.
   */
  authenticate(token: string | undefined, projectId: string | undefined): Promise<Identity>;
  /** Header value sent with 401s so clients know where to get a token. */
  readonly wwwAuthenticate?: string;
  ping?(signal?: AbortSignal): Promise<void>;
}

/** Role names, configurable because clouds rename them. */
export type RoleNames = { reader: string; member: string; admin: string };
export const defaultRoleNames: RoleNames = { reader: "reader", member: "member", admin: "admin" };
