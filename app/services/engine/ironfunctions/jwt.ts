import { SignJWT } from "jose";

const lifetimeSeconds = 300;
/** Re-sign this long before expiry, so a token never expires while a call is in flight. */
const renewBeforeSeconds = 60;
/** The engine checks `iat` without leeway: backdate it so a slightly slow engine clock still accepts. */
const backdateSeconds = 30;

/**
 * Bearer tokens for an engine started with JWT_AUTH_KEY: HS256, short-lived, cached and shared
 * by concurrent calls until shortly before they expire.
 */
export function createBearerSigner(key: string, now: () => number = Date.now): () => Promise<string> {
  const secret = new TextEncoder().encode(key);
  let cached: { token: Promise<string>; expiresAt: number } | undefined;
  return () => {
    const seconds = Math.floor(now() / 1000);
    if (!cached || cached.expiresAt - renewBeforeSeconds <= seconds) {
      const expiresAt = seconds + lifetimeSeconds;
      const token = new SignJWT({})
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setIssuedAt(seconds - backdateSeconds)
        .setExpirationTime(expiresAt)
        .sign(secret);
      cached = { token, expiresAt };
      token.catch(() => {
        cached = undefined;
      });
    }
    return cached.token;
  };
}
