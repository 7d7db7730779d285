import { z } from "zod";
import type { Identity } from "../../types.ts";

/** The parts of a Keystone v3 token body Picasso relies on; anything else is ignored. */
const tokenBody = z.object({
  token: z.object({
    expires_at: z.string(),
    user: z.object({ id: z.string().min(1) }),
    project: z.object({ id: z.string().min(1) }).optional(),
    roles: z.array(z.object({ name: z.string() })).optional(),
  }),
});

/** Identity from a `GET /v3/auth/tokens` body; null when the body is not a token. */
export function identityFromTokenBody(body: unknown): Identity | null {
  const parsed = tokenBody.safeParse(body);
  if (!parsed.success) return null;
  const { token } = parsed.data;
  const expiresAt = new Date(token.expires_at);
  if (Number.isNaN(expiresAt.getTime())) return null;
  return {
    userId: token.user.id,
    // Domain-scoped, system-scoped and unscoped tokens carry no project.
    projectId: token.project?.id ?? null,
    roles: (token.roles ?? []).map((role) => role.name),
    expiresAt,
  };
}

/** `expires_at` of a freshly issued token (the service token). */
export function expiryFromTokenBody(body: unknown): Date | null {
  const parsed = z.object({ token: z.object({ expires_at: z.string() }) }).safeParse(body);
  if (!parsed.success) return null;
  const expiresAt = new Date(parsed.data.token.expires_at);
  return Number.isNaN(expiresAt.getTime()) ? null : expiresAt;
}
