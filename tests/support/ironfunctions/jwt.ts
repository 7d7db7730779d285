// Token check as IronFunctions does it (dgrijalva/jwt-go v3 with
// StandardClaims and the shared secret returned for every algorithm).
// Hand-written rather than built on jose because the observable details
// differ: no leeway with `now > exp` (not >=), claims checked before the
// signature, a non-string `aud` rejected, and jwt-go's error texts.

import { createHmac, timingSafeEqual } from "node:crypto";
import { goDuration } from "./go.ts";

const HMAC_ALGS: Record<string, string> = { HS256: "sha256", HS384: "sha384", HS512: "sha512" };
const ASYMMETRIC = /^(RS|PS|ES)(256|384|512)$/;
const SEGMENT = /^[A-Za-z0-9_-]*$/;

function decodeSegment(seg: string): Buffer | null {
  if (!SEGMENT.test(seg) || seg.length % 4 === 1) return null;
  return Buffer.from(seg, "base64url");
}

function parseJsonObject(buf: Buffer): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(buf.toString("utf8"));
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const INT_CLAIMS = ["exp", "iat", "nbf"] as const;
const STRING_CLAIMS = ["aud", "iss", "sub", "jti"] as const;

/** Returns null when the request may pass, else jwt-go's error text. */
export function checkJwt(
  signingKey: string,
  authorization: string | undefined,
  nowMs = Date.now(),
): string | null {
  if (signingKey === "") return null;
  if (!authorization) return "no token present in request";
  let token = authorization;
  if (token.length > 6 && token.slice(0, 7).toUpperCase() === "BEARER ") token = token.slice(7);

  const parts = token.split(".");
  if (parts.length !== 3) return "token contains an invalid number of segments";
  const [h, c, s] = parts as [string, string, string];
  const headerBuf = decodeSegment(h);
  if (!headerBuf) return "illegal base64 data at input byte 0";
  const header = parseJsonObject(headerBuf);
  if (!header) return "invalid character looking for beginning of value";
  const claimsBuf = decodeSegment(c);
  if (!claimsBuf) return "illegal base64 data at input byte 0";
  const claims = parseJsonObject(claimsBuf);
  if (!claims) return "invalid character looking for beginning of value";
  for (const k of INT_CLAIMS) {
    const v = claims[k];
    if (v !== undefined && v !== null && !(typeof v === "number" && Number.isInteger(v))) {
      return `json: cannot unmarshal ${typeof v} into Go struct field StandardClaims.${k} of type int64`;
    }
  }
  for (const k of STRING_CLAIMS) {
    const v = claims[k];
    if (v !== undefined && v !== null && typeof v !== "string") {
      return `json: cannot unmarshal ${Array.isArray(v) ? "array" : typeof v} into Go struct field StandardClaims.${k} of type string`;
    }
  }

  const alg = typeof header.alg === "string" ? header.alg : "";
  const hash = HMAC_ALGS[alg];
  if (!hash && alg !== "none" && !ASYMMETRIC.test(alg)) return "signing method (alg) is unavailable.";

  // Claims first; a later failing check replaces the earlier message.
  const now = Math.floor(nowMs / 1000);
  let message: string | null = null;
  const exp = typeof claims.exp === "number" ? claims.exp : 0;
  const iat = typeof claims.iat === "number" ? claims.iat : 0;
  const nbf = typeof claims.nbf === "number" ? claims.nbf : 0;
  if (exp !== 0 && now > exp) message = `token is expired by ${goDuration(now - exp)}`;
  if (iat !== 0 && now < iat) message = "Token used before issued";
  if (nbf !== 0 && now < nbf) message = "token is not valid yet";

  if (!hash) return alg === "none" ? "'none' signature type is not allowed" : "key is of invalid type";
  const sig = decodeSegment(s);
  if (!sig) return "illegal base64 data at input byte 0";
  const expected = createHmac(hash, signingKey).update(`${h}.${c}`).digest();
  if (sig.length !== expected.length || !timingSafeEqual(sig, expected)) return "signature is invalid";
  return message;
}
