/**
 * The Content-Type IronFunctions would send for output starting with `head`: it sniffs with Go's
 * `http.DetectContentType`. This is the part of that algorithm functions meet in practice: HTML,
 * XML, a few binary magic numbers, then text (no control bytes) or octet-stream. JSON output is
 * `text/plain; charset=utf-8` there too, so routes that return JSON set a Content-Type header.
 */
export function sniffContentType(head: Uint8Array): string {
  const data = head.subarray(0, 512);
  let start = 0;
  while (start < data.length && isWhitespace(data[start] ?? 0)) start++;
  const rest = data.subarray(start);
  const text = new TextDecoder("latin1").decode(rest.subarray(0, 16)).toLowerCase();
  for (const tag of htmlTags) {
    if (text.startsWith(tag)) {
      const after = rest[tag.length];
      if (after === 0x20 || after === 0x3e) return "text/html; charset=utf-8";
    }
  }
  if (text.startsWith("<!--")) return "text/html; charset=utf-8";
  if (text.startsWith("<?xml")) return "text/xml; charset=utf-8";
  for (const [magic, type] of magicNumbers) {
    if (startsWith(data, magic)) return type;
  }
  for (const byte of rest) {
    if (byte <= 0x08 || byte === 0x0b || (byte >= 0x0e && byte <= 0x1a) || (byte >= 0x1c && byte <= 0x1f)) {
      return "application/octet-stream";
    }
  }
  return "text/plain; charset=utf-8";
}

const htmlTags = [
  "<!doctype html",
  "<html",
  "<head",
  "<script",
  "<iframe",
  "<h1",
  "<div",
  "<font",
  "<table",
  "<a",
  "<style",
  "<title",
  "<b",
  "<body",
  "<br",
  "<p",
];

const magicNumbers: [number[], string][] = [
  [[0x25, 0x50, 0x44, 0x46, 0x2d], "application/pdf"],
  [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "image/png"],
  [[0xff, 0xd8, 0xff], "image/jpeg"],
  [[0x47, 0x49, 0x46, 0x38, 0x37, 0x61], "image/gif"],
  [[0x47, 0x49, 0x46, 0x38, 0x39, 0x61], "image/gif"],
  [[0x1f, 0x8b, 0x08], "application/x-gzip"],
  [[0x50, 0x4b, 0x03, 0x04], "application/zip"],
];

function startsWith(data: Uint8Array, magic: number[]): boolean {
  return magic.length <= data.length && magic.every((byte, index) => data[index] === byte);
}

function isWhitespace(byte: number): boolean {
  return byte === 0x09 || byte === 0x0a || byte === 0x0c || byte === 0x0d || byte === 0x20;
}
