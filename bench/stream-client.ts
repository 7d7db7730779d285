/**
 * One large transfer, timed, in its own process so the client never shares an event loop with a
 * proxy. Prints one JSON line: {"bytes", "seconds", "status"} or {"error"}.
 *
 *   node --import tsx bench/stream-client.ts upload <url> <bytes>     POST with Content-Length
 *   node --import tsx bench/stream-client.ts download <url> <bytes>   GET, expects exactly <bytes>
 *
 * The upload body is one reused zero-filled buffer written with backpressure; the engine answers
 * {"bytes": N} and N must equal what was sent, so a proxy that drops data cannot look fast.
 */
import http from "node:http";

const [mode, url, bytesText] = process.argv.slice(2);
const bytes = Number(bytesText);
const chunk = Buffer.alloc(1024 * 1024);

function finish(result: Record<string, unknown>): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

function upload(target: URL): void {
  const started = process.hrtime.bigint();
  const request = http.request(target, {
    method: "POST",
    agent: false,
    headers: { "content-type": "application/octet-stream", "content-length": String(bytes) },
  });
  let left = bytes;
  let answered = false;
  const pump = () => {
    while (left > 0 && !answered) {
      const size = Math.min(left, chunk.length);
      left -= size;
      if (!request.write(size === chunk.length ? chunk : chunk.subarray(0, size))) {
        request.once("drain", pump);
        return;
      }
    }
    if (!answered) request.end();
  };
  request.on("response", (response) => {
    answered = true;
    const parts: Buffer[] = [];
    response.on("data", (part: Buffer) => parts.push(part));
    response.on("end", () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const body = Buffer.concat(parts).toString("utf8");
      let received: unknown;
      try {
        received = (JSON.parse(body) as { bytes?: unknown }).bytes;
      } catch {
        received = undefined;
      }
      if (response.statusCode !== 200 || received !== bytes) {
        finish({
          error: `upload answered ${response.statusCode}: ${body.slice(0, 200)}`,
          status: response.statusCode,
        });
      }
      finish({ bytes, seconds, status: response.statusCode });
    });
  });
  request.on("error", (error) => finish({ error: `upload failed: ${error.message}` }));
  pump();
}

function download(target: URL): void {
  const started = process.hrtime.bigint();
  const request = http.get(target, { agent: false }, (response) => {
    let received = 0;
    response.on("data", (part: Buffer) => {
      received += part.length;
    });
    response.on("end", () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (response.statusCode !== 200 || received !== bytes) {
        finish({ error: `download answered ${response.statusCode} with ${received} of ${bytes} bytes` });
      }
      finish({ bytes, seconds, status: response.statusCode });
    });
    response.on("error", (error) => finish({ error: `download failed: ${error.message}` }));
  });
  request.on("error", (error) => finish({ error: `download failed: ${error.message}` }));
}

if (!url || !Number.isSafeInteger(bytes) || bytes <= 0 || (mode !== "upload" && mode !== "download")) {
  process.stderr.write("usage: stream-client.ts upload|download <url> <bytes>\n");
  process.exit(2);
}
process.stdin.on("end", () => process.exit(1));
process.stdin.resume();
if (mode === "upload") upload(new URL(url));
else download(new URL(url));
