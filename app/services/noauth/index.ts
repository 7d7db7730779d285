import type { Identity } from "../../types.ts";
import type { Authenticator, RoleNames } from "../auth/types.ts";

/**
 * Development only: no token is checked; every caller is a member of the project named in the
 * URL. The config refuses it on non-loopback hosts unless explicitly allowed.
 */
export function createNoAuthAuthenticator(roleNames: RoleNames): Authenticator {
  const roles = [roleNames.member, roleNames.reader];
  return {
    kind: "noauth",
    async authenticate(_token, projectId): Promise<Identity> {
      return {
        userId: "noauth",
        projectId: projectId ?? null,
        roles,
        expiresAt: new Date(Date.now() + 3_600_000),
      };
    },
  };
}
