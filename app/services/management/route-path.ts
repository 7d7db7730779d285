import { routeLimits } from "./limits.ts";

export type PathCheck = { ok: true; path: string } | { ok: false; message: string };

/**
 * The one spelling of a route path that Picasso stores and the engine can serve: absolute, no
 * trailing slash, no empty, `.` or `..` segment, and only unreserved URL characters, because the
 * engine cleans URL paths before matching them and crashes on some escapes (BEHAVIOUR.md).
 * A missing leading slash and one trailing slash are fixed; anything else is refused, never rewritten.
 */
export function normaliseRoutePath(raw: string): PathCheck {
  if (raw.length === 0) return { ok: false, message: "must not be empty" };
  if (raw.length > routeLimits.pathMaxLength + 2) {
    return { ok: false, message: `must be at most ${routeLimits.pathMaxLength} characters` };
  }
  let path = raw.startsWith("/") ? raw : `/${raw}`;
  if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
  if (path === "/") return { ok: false, message: "must name at least one segment, e.g. /hello" };
  if (path.length > routeLimits.pathMaxLength) {
    return { ok: false, message: `must be at most ${routeLimits.pathMaxLength} characters` };
  }
  const segments = path.slice(1).split("/");
  if (segments.length > routeLimits.maxSegments) {
    return { ok: false, message: `must have at most ${routeLimits.maxSegments} segments` };
  }
  for (const segment of segments) {
    if (segment === "") return { ok: false, message: "must not contain empty segments (//)" };
    if (segment === "." || segment === "..") {
      return { ok: false, message: `must not contain "${segment}" segments` };
    }
    if (segment.length > routeLimits.segmentMaxLength) {
      return { ok: false, message: `segments must be at most ${routeLimits.segmentMaxLength} characters` };
    }
    if (!routeLimits.segmentPattern.test(segment)) {
      const bad = [...segment].find((char) => !routeLimits.segmentPattern.test(char)) ?? "";
      const shown = /^[\x21-\x7e]$/.test(bad)
        ? `"${bad}"`
        : `U+${(bad.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
      return {
        ok: false,
        message: `must use only letters, digits and . _ ~ - in segments (found ${shown}; percent-encoding, queries and patterns are refused)`,
      };
    }
  }
  return { ok: true, path };
}
