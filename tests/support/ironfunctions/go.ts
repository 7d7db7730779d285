// Small re-implementations of the Go standard-library behaviours that leak
// through the IronFunctions API (encoding/json, path.Clean, net/url,
// net/http sniffing and header canonicalisation). Written from the
// documented behaviour of those packages, not copied from them.

import { createHash } from "node:crypto";

// ---------------------------------------------------------------------------
// JSON decoding (encoding/json Decoder.Decode into a typed struct)
// ---------------------------------------------------------------------------

export type JNode =
  | { t: "obj"; entries: [string, JNode][] }
  | { t: "arr"; items: JNode[] }
  | { t: "str"; v: string }
  | { t: "num"; raw: string }
  | { t: "bool"; v: boolean }
  | { t: "null" };

export class GoJsonError extends Error {}

const WS = new Set([" ", "\t", "\n", "\r"]);

// Parses the first JSON value of `text` and ignores whatever follows it, like
// json.Decoder.Decode does (gin's BindJSON uses a Decoder, not Unmarshal).
// Numbers keep their literal text so integer range checks can be exact.
export function decodeFirstValue(text: string): JNode {
  let i = 0;
  const fail = (): never => {
    throw new GoJsonError("invalid JSON");
  };
  const skipWs = () => {
    while (i < text.length && WS.has(text[i] as string)) i++;
  };
  const parseString = (): string => {
    // caller guarantees text[i] === '"'
    i++;
    let out = "";
    for (;;) {
      if (i >= text.length) fail();
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return out;
      }
      if (c < 0x20) fail();
      if (c === 0x5c) {
        const e = text[i + 1];
        i += 2;
        switch (e) {
          case '"':
            out += '"';
            break;
          case "\\":
            out += "\\";
            break;
          case "/":
            out += "/";
            break;
          case "b":
            out += "\b";
            break;
          case "f":
            out += "\f";
            break;
          case "n":
            out += "\n";
            break;
          case "r":
            out += "\r";
            break;
          case "t":
            out += "\t";
            break;
          case "u": {
            const hex = text.slice(i, i + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail();
            out += String.fromCharCode(Number.parseInt(hex, 16));
            i += 4;
            break;
          }
          default:
            fail();
        }
        continue;
      }
      out += text[i];
      i++;
    }
  };
  const parseValue = (depth: number): JNode => {
    if (depth > 10000) fail();
    skipWs();
    const c = text[i];
    if (c === undefined) fail();
    if (c === "{") {
      i++;
      const entries: [string, JNode][] = [];
      skipWs();
      if (text[i] === "}") {
        i++;
        return { t: "obj", entries };
      }
      for (;;) {
        skipWs();
        if (text[i] !== '"') fail();
        const key = parseString();
        skipWs();
        if (text[i] !== ":") fail();
        i++;
        entries.push([key, parseValue(depth + 1)]);
        skipWs();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return { t: "obj", entries };
        }
        fail();
      }
    }
    if (c === "[") {
      i++;
      const items: JNode[] = [];
      skipWs();
      if (text[i] === "]") {
        i++;
        return { t: "arr", items };
      }
      for (;;) {
        items.push(parseValue(depth + 1));
        skipWs();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return { t: "arr", items };
        }
        fail();
      }
    }
    if (c === '"') return { t: "str", v: parseString() };
    if (text.startsWith("true", i)) {
      i += 4;
      return { t: "bool", v: true };
    }
    if (text.startsWith("false", i)) {
      i += 5;
      return { t: "bool", v: false };
    }
    if (text.startsWith("null", i)) {
      i += 4;
      return { t: "null" };
    }
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail();
    const raw = (m as RegExpExecArray)[0];
    i += raw.length;
    return { t: "num", raw };
  };
  return parseValue(0);
}

// Go matches JSON keys to struct fields exactly first, then case-insensitively.
export function fieldFor(key: string, fields: readonly string[]): string | undefined {
  if (fields.includes(key)) return key;
  const lower = key.toLowerCase();
  return fields.find((f) => f.toLowerCase() === lower);
}

export function asString(n: JNode, current: string): string {
  if (n.t === "null") return current;
  if (n.t !== "str") throw new GoJsonError("type");
  return n.v;
}

function asInteger(n: JNode, current: number, min: bigint, max: bigint): number {
  if (n.t === "null") return current;
  if (n.t !== "num" || !/^-?[0-9]+$/.test(n.raw)) throw new GoJsonError("type");
  const v = BigInt(n.raw);
  if (v < min || v > max) throw new GoJsonError("range");
  return Number(v);
}

export const asUint64 = (n: JNode, cur: number) => asInteger(n, cur, 0n, 2n ** 64n - 1n);
export const asInt32 = (n: JNode, cur: number) => asInteger(n, cur, -(2n ** 31n), 2n ** 31n - 1n);
export const asInt64 = (n: JNode, cur: number) => asInteger(n, cur, -(2n ** 63n), 2n ** 63n - 1n);

// map[string]string: a null element decodes to "" (a fresh zero value is stored).
// Decoding into an existing map merges, which is what a repeated key does in Go.
export function asStringMap(n: JNode, current: Map<string, string> | null): Map<string, string> | null {
  if (n.t === "null") return null;
  if (n.t !== "obj") throw new GoJsonError("type");
  const out = current ?? new Map<string, string>();
  for (const [k, v] of n.entries) out.set(k, asString(v, ""));
  return out;
}

// http.Header (map[string][]string); a null list is stored as nil.
export function asHeaderMap(
  n: JNode,
  current: Map<string, string[] | null> | null,
): Map<string, string[] | null> | null {
  if (n.t === "null") return null;
  if (n.t !== "obj") throw new GoJsonError("type");
  const out = current ?? new Map<string, string[] | null>();
  for (const [k, v] of n.entries) {
    if (v.t === "null") {
      out.set(k, null);
      continue;
    }
    if (v.t !== "arr") throw new GoJsonError("type");
    out.set(
      k,
      v.items.map((item) => asString(item, "")),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------
// JSON encoding (encoding/json Marshal: HTML-safe escaping, sorted map keys)
// ---------------------------------------------------------------------------

export function jstr(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
      out += `\\u${c.toString(16).padStart(4, "0")}`;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      // Go cannot hold a lone surrogate; it would have become U+FFFD on input.
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        out += s[i] + (s[i + 1] as string);
        i++;
      } else out += "\ufffd";
    } else out += s[i];
  }
  return `${out}"`;
}

export function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function jmap<V>(m: Map<string, V> | null, enc: (v: V) => string): string {
  if (m === null) return "null";
  const keys = [...m.keys()].sort(byteCompare);
  return `{${keys.map((k) => `${jstr(k)}:${enc(m.get(k) as V)}`).join(",")}}`;
}

export const jstrList = (v: string[] | null): string => (v === null ? "null" : `[${v.map(jstr).join(",")}]`);

// ---------------------------------------------------------------------------
// Paths and URLs
// ---------------------------------------------------------------------------

// path.Clean
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(seg);
  }
  const joined = out.join("/");
  if (rooted) return `/${joined}`;
  return joined === "" ? "." : joined;
}

const HEX = /^[0-9a-fA-F]{2}$/;

// url.PathUnescape / QueryUnescape to raw bytes; null on a bad escape.
export function percentDecode(s: string, plusIsSpace: boolean): Buffer | null {
  const bytes: number[] = [];
  const src = Buffer.from(s, "utf8");
  for (let i = 0; i < src.length; i++) {
    const b = src[i] as number;
    if (b === 0x25) {
      const hex = src.subarray(i + 1, i + 3).toString("latin1");
      if (!HEX.test(hex)) return null;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (b === 0x2b && plusIsSpace) bytes.push(0x20);
    else bytes.push(b);
  }
  return Buffer.from(bytes);
}

// The part of url.Parse that route validation depends on: either an error
// (the real server then dereferences a nil URL and drops the connection) or
// the URL's decoded Path.
export function goUrlPath(raw: string): { path: string } | { error: string } {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: Go rejects exactly these
  if (/[\x00-\x1f\x7f]/.test(raw)) return { error: "invalid control character in URL" };
  let rest = raw;
  const hash = rest.indexOf("#");
  if (hash >= 0) {
    const frag = rest.slice(hash + 1);
    if (percentDecode(frag, false) === null) return { error: "invalid URL escape" };
    rest = rest.slice(0, hash);
  }
  if (rest === "*") return { path: "*" };
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(rest);
  if (scheme) {
    rest = rest.slice((scheme[0] as string).length);
  } else if (rest.startsWith(":")) {
    return { error: "missing protocol scheme" };
  }
  const q = rest.indexOf("?");
  if (q >= 0) rest = rest.slice(0, q);
  if (scheme && !rest.startsWith("/")) return { path: "" }; // opaque URL
  if (!scheme && !rest.startsWith("/")) {
    const firstSeg = rest.split("/")[0] as string;
    if (firstSeg.includes(":")) return { error: "first path segment in URL cannot contain colon" };
  }
  if (rest.startsWith("//")) {
    const end = rest.indexOf("/", 2);
    const authority = end < 0 ? rest.slice(2) : rest.slice(2, end);
    if (percentDecode(authority, false) === null) return { error: "invalid URL escape" };
    rest = end < 0 ? "" : rest.slice(end);
  }
  const decoded = percentDecode(rest, false);
  if (decoded === null) return { error: "invalid URL escape" };
  return { path: decoded.toString("utf8") };
}

function isUnreserved(c: string): boolean {
  return /[A-Za-z0-9\-_.~]/.test(c);
}

// url.URL.EscapedPath: keep the client's spelling when it is a valid
// encoding, otherwise re-escape the decoded path.
export function escapedPath(rawPath: string, decoded: string): string {
  if (/^[A-Za-z0-9\-_.~!$&'()*+,;=:@[\]/%]*$/.test(rawPath)) return rawPath;
  let out = "";
  for (const b of Buffer.from(decoded, "utf8")) {
    const c = String.fromCharCode(b);
    if (b < 0x80 && (isUnreserved(c) || "$&+,/:;=@".includes(c))) out += c;
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

// ---------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// textproto.CanonicalMIMEHeaderKey
export function canonicalHeaderKey(k: string): string {
  if (!TOKEN.test(k)) return k;
  let upper = true;
  let out = "";
  for (const c of k) {
    out += upper ? c.toUpperCase() : c.toLowerCase();
    upper = c === "-";
  }
  return out;
}

// Go's time.Duration String() for whole seconds, e.g. "1h0m5s".
export function goDuration(seconds: number): string {
  if (seconds === 0) return "0s";
  const neg = seconds < 0;
  let s = Math.abs(seconds);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  let out = "";
  if (h > 0) out = `${h}h${m}m${s}s`;
  else if (m > 0) out = `${m}m${s}s`;
  else out = `${s}s`;
  return neg ? `-${out}` : out;
}

// UUIDv5 in the nil namespace, as satori/go.uuid NewV5(uuid.Nil, name).
export function uuidV5(name: Buffer): string {
  const h = createHash("sha1").update(Buffer.alloc(16)).update(name).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

// A subset of http.DetectContentType covering what function output usually is.
const HTML_SIGS = [
  "<!DOCTYPE HTML",
  "<HTML",
  "<HEAD",
  "<SCRIPT",
  "<IFRAME",
  "<H1",
  "<DIV",
  "<FONT",
  "<TABLE",
  "<A",
  "<STYLE",
  "<TITLE",
  "<B",
  "<BODY",
  "<BR",
  "<P",
  "<!--",
];

const EXACT_SIGS: [number[] | string, string][] = [
  ["%PDF-", "application/pdf"],
  ["%!PS-Adobe-", "application/postscript"],
  [[0xfe, 0xff], "text/plain; charset=utf-16be"],
  [[0xff, 0xfe], "text/plain; charset=utf-16le"],
  [[0xef, 0xbb, 0xbf], "text/plain; charset=utf-8"],
  ["GIF87a", "image/gif"],
  ["GIF89a", "image/gif"],
  [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "image/png"],
  [[0xff, 0xd8, 0xff], "image/jpeg"],
  ["BM", "image/bmp"],
  [[0, 0, 1, 0], "image/x-icon"],
  [[0, 0, 2, 0], "image/x-icon"],
  ["ID3", "audio/mpeg"],
  ["OggS\x00", "application/ogg"],
  ["MThd\x00\x00\x00\x06", "audio/midi"],
  [[0x1a, 0x45, 0xdf, 0xa3], "video/webm"],
  ["wOFF", "font/woff"],
  ["wOF2", "font/woff2"],
  [[0x1f, 0x8b, 0x08], "application/x-gzip"],
  ["PK\x03\x04", "application/zip"],
  ["Rar!\x1a\x07\x00", "application/x-rar-compressed"],
  ["Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"],
  ["\x00asm", "application/wasm"],
];

function startsWithBytes(data: Uint8Array, sig: number[] | string, at = 0): boolean {
  const bytes = typeof sig === "string" ? [...sig].map((c) => c.charCodeAt(0)) : sig;
  if (data.length < at + bytes.length) return false;
  return bytes.every((b, i) => data[at + i] === b);
}

export function detectContentType(input: Uint8Array): string {
  const data = input.subarray(0, 512);
  let ws = 0;
  while (ws < data.length && [0x09, 0x0a, 0x0c, 0x0d, 0x20].includes(data[ws] as number)) ws++;
  for (const sig of HTML_SIGS) {
    if (data.length < ws + sig.length + 1) continue;
    let ok = true;
    for (let i = 0; i < sig.length; i++) {
      let b = data[ws + i] as number;
      if (b >= 0x61 && b <= 0x7a) b -= 0x20;
      if (b !== sig.charCodeAt(i)) {
        ok = false;
        break;
      }
    }
    const term = data[ws + sig.length];
    if (ok && (term === 0x20 || term === 0x3e)) return "text/html; charset=utf-8";
  }
  if (startsWithBytes(data, "<?xml", ws)) return "text/xml; charset=utf-8";
  for (const [sig, type] of EXACT_SIGS) if (startsWithBytes(data, sig)) return type;
  if (startsWithBytes(data, "RIFF") && data.length >= 12) {
    const kind = Buffer.from(data.subarray(8, 12)).toString("latin1");
    if (kind === "WEBP" && startsWithBytes(data, "VP", 12)) return "image/webp";
    if (kind === "WAVE") return "audio/wave";
    if (kind === "AVI ") return "video/avi";
  }
  for (const b of data) {
    if (b <= 0x08 || b === 0x0b || (b >= 0x0e && b <= 0x1a) || (b >= 0x1c && b <= 0x1f)) {
      return "application/octet-stream";
    }
  }
  return "text/plain; charset=utf-8";
}
