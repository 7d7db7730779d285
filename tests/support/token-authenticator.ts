/**
 * TEST-ONLY authenticator: validates a real Keystone token by asking Keystone about itself
 * (`GET /v3/auth/tokens` with X-Auth-Token = X-Subject-Token = the token), so management tests run
 * against the real Keystone until the production Keystone authenticator is on main. No cache.
 */
import { ApiError } from "../../app/lib/errors.ts";
import type { Authenticator } from "../../app/services/auth/types.ts";
import type { Identity } from "../../app/types.ts";

type TokenBody = {
  token: {
    expires_at: string;
    user: { id: string };
    project?: { id: string };
    roles?: { name: string }[];
  };
};

export function selfValidatingAuthenticator(keystoneUrl: string): Authenticator {
  const base = keystoneUrl.replace(/\/+$/, "");
  return {
    kind: "keystone",
    async authenticate(token): Promise<Identity> {
      if (!token) throw new ApiError("unauthorized", "Authentication required: send X-Auth-Token");
      let response: Response;
      try {
        response = await fetch(`${base}/auth/tokens?nocatalog`, {
          headers: { "X-Auth-Token": token, "X-Subject-Token": token, Accept: "application/json" },
          signal: AbortSignal.timeout(15_000),
        });
      } catch {
        throw new ApiError("service_unavailable", "Keystone unreachable");
      }
      if (response.status === 401 || response.status === 404) {
        throw new ApiError("unauthorized", "The token is invalid or expired");
      }
      if (response.status !== 200)
        throw new ApiError("service_unavailable", `Keystone answered ${response.status}`);
      const { token: body } = (await response.json()) as TokenBody;
      return {
        userId: body.user.id,
        projectId: body.project?.id ?? null,
        roles: (body.roles ?? []).map((role) => role.name),
        expiresAt: new Date(body.expires_at),
      };
    },
  };
}
