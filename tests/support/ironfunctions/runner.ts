// Runs "containers" as local processes: the route image names an
// executable in the functions directory. Each process gets its own process
// group so that killing it also kills whatever it started, as removing a
// container would.

import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";

/** `picasso/hello:0.1`, `registry:5000/x/hello@sha256:..`, `hello` -> `<dir>/hello`. */
export function resolveImage(functionsDir: string, image: string): string | null {
  let name = image;
  const at = name.indexOf("@");
  if (at >= 0) name = name.slice(0, at);
  name = name.slice(name.lastIndexOf("/") + 1);
  const colon = name.indexOf(":");
  if (colon >= 0) name = name.slice(0, colon);
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name === "." || name === "..") return null;
  const file = join(functionsDir, name);
  try {
    if (!statSync(file).isFile()) return null;
    accessSync(file, constants.X_OK);
    return file;
  } catch {
    return null;
  }
}

export function imagePullError(image: string): string {
  return `Failed to pull image '${image}': image not found`;
}

/** Docker reports a signal death as 128 + signal number. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal) return 128 + ((osConstants.signals as Record<string, number>)[signal] ?? 0);
  return -1;
}

export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

export function safeEnv(env: Record<string, string>): Record<string, string> {
  // The process needs PATH for `#!/usr/bin/env` scripts; the function's own
  // variables win, as a container's env overrides the image's.
  const out: Record<string, string> = { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin" };
  for (const [k, v] of Object.entries(env)) {
    if (k === "" || k.includes("=") || k.includes("\0") || v.includes("\0")) continue;
    out[k] = v;
  }
  return out;
}

export function startProcess(file: string, env: Record<string, string>): ChildProcess {
  const child = spawn(file, [], { env, stdio: ["pipe", "pipe", "pipe"], detached: true });
  // A function that exits without reading its input must not take the server down.
  child.stdin?.on("error", () => {});
  child.stdout?.on("error", () => {});
  child.stderr?.on("error", () => {});
  return child;
}

const STDERR_CAP = 64 * 1024;

export interface ProcessOutcome {
  exitCode: number;
  timedOut: boolean;
  killed: boolean;
  spawnError?: string;
  stderr: string;
}

export interface ColdProcess {
  child: ChildProcess;
  done: Promise<ProcessOutcome>;
  kill(): void;
}

/**
 * Starts one cold process. stdout is handed to `onStdout`, which can pause
 * the process's stdout for backpressure. `done` settles after the process
 * and all its pipes are closed.
 */
export function runCold(opts: {
  file: string;
  env: Record<string, string>;
  stdin: Readable | Buffer;
  timeoutMs: number;
  onStdout: (chunk: Buffer, pause: () => void, resume: () => void) => void;
  onStdinBytes?: (n: number) => void;
}): ColdProcess {
  const child = startProcess(opts.file, opts.env);
  let stderr = "";
  let timedOut = false;
  let killed = false;
  let spawnError: string | undefined;
  child.stderr?.on("data", (d: Buffer) => {
    if (stderr.length < STDERR_CAP) stderr += d.toString("utf8");
  });
  const stdout = child.stdout as Readable;
  stdout.on("data", (d: Buffer) =>
    opts.onStdout(
      d,
      () => stdout.pause(),
      () => stdout.resume(),
    ),
  );
  const stdin = child.stdin;
  if (stdin) {
    if (Buffer.isBuffer(opts.stdin)) {
      opts.onStdinBytes?.(opts.stdin.length);
      stdin.end(opts.stdin);
    } else {
      const src = opts.stdin;
      src.on("data", (d: Buffer) => opts.onStdinBytes?.(d.length));
      src.pipe(stdin);
    }
  }
  const timer = setTimeout(
    () => {
      timedOut = true;
      killGroup(child);
    },
    Math.min(opts.timeoutMs, 2 ** 31 - 1),
  );
  const done = new Promise<ProcessOutcome>((resolve) => {
    child.on("error", (err) => {
      spawnError = err.message;
    });
    child.on("exit", () => {
      // The container is gone once its main process is; take its children with it.
      killGroup(child);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (!Buffer.isBuffer(opts.stdin)) {
        opts.stdin.unpipe();
        opts.stdin.resume();
      }
      resolve({ exitCode: exitCodeOf(code, signal), timedOut, killed, spawnError, stderr });
    });
  });
  return {
    child,
    done,
    kill: () => {
      killed = true;
      killGroup(child);
    },
  };
}

// ---------------------------------------------------------------------------
// Hot functions (format: http)
// ---------------------------------------------------------------------------

export type HotResult =
  | { ok: true; body: Buffer }
  | { ok: false; timeout: boolean; message: string; exitCode?: number };

interface Pending {
  resolve: (r: HotResult) => void;
  timer: NodeJS.Timeout;
}

/** One long-lived function process that speaks HTTP/1.1 over stdin/stdout. */
export class HotProcess {
  readonly child: ChildProcess;
  readonly env: Record<string, string>;
  busy = false;
  retired = false;
  exited = false;
  exitCode = -1;
  calls = 0;
  stderr = "";
  idleTimer: NodeJS.Timeout | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private pending: Pending | undefined;
  private onExitCbs: (() => void)[] = [];

  constructor(file: string, env: Record<string, string>) {
    this.env = env;
    this.child = startProcess(file, env);
    this.child.stdout?.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.tryComplete(false);
    });
    this.child.stderr?.on("data", (d: Buffer) => {
      if (this.stderr.length < STDERR_CAP) this.stderr += d.toString("utf8");
    });
    this.child.on("error", () => {});
    this.child.on("exit", () => killGroup(this.child));
    this.child.on("close", (code, signal) => {
      this.exited = true;
      this.exitCode = exitCodeOf(code, signal);
      this.tryComplete(true);
      if (this.pending) {
        this.finish({
          ok: false,
          timeout: false,
          message: this.exitCode === 0 ? "unexpected EOF" : `exit code ${this.exitCode}`,
          exitCode: this.exitCode,
        });
      }
      for (const cb of this.onExitCbs) cb();
    });
  }

  onExit(cb: () => void): void {
    this.onExitCbs.push(cb);
  }

  kill(): void {
    this.retired = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    killGroup(this.child);
  }

  call(request: Buffer, timeoutMs: number): Promise<HotResult> {
    this.calls++;
    return new Promise<HotResult>((resolve) => {
      if (this.exited) {
        resolve({
          ok: false,
          timeout: false,
          message: `exit code ${this.exitCode}`,
          exitCode: this.exitCode,
        });
        return;
      }
      const timer = setTimeout(
        () => {
          this.finish({ ok: false, timeout: true, message: "Timed out" });
          // The stream is out of step after a lost answer; the process is useless now.
          this.kill();
        },
        Math.min(timeoutMs, 2 ** 31 - 1),
      );
      this.pending = { resolve, timer };
      this.child.stdin?.write(request);
    });
  }

  private finish(r: HotResult): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve(r);
  }

  private tryComplete(eof: boolean): void {
    if (!this.pending) return;
    const parsed = parseHttpResponse(this.buf, eof);
    if (!parsed) return;
    this.buf = this.buf.subarray(parsed.consumed);
    this.finish({ ok: true, body: parsed.body });
  }
}

/** http.ReadResponse: body by Content-Length, chunked, or up to EOF. */
export function parseHttpResponse(buf: Buffer, eof: boolean): { consumed: number; body: Buffer } | null {
  const headEnd = buf.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  const lines = buf.subarray(0, headEnd).toString("latin1").split("\r\n");
  let contentLength: number | undefined;
  let chunked = false;
  for (const line of lines.slice(1)) {
    const idx = line.indexOf(":");
    if (idx < 0) continue;
    const name = line.slice(0, idx).trim().toLowerCase();
    const value = line.slice(idx + 1).trim();
    if (name === "content-length") contentLength = Number.parseInt(value, 10);
    if (name === "transfer-encoding" && value.toLowerCase().includes("chunked")) chunked = true;
  }
  const start = headEnd + 4;
  if (chunked) {
    const parts: Buffer[] = [];
    let pos = start;
    for (;;) {
      const lineEnd = buf.indexOf("\r\n", pos);
      if (lineEnd < 0) return null;
      const size = Number.parseInt(buf.subarray(pos, lineEnd).toString("latin1"), 16);
      if (Number.isNaN(size)) return null;
      if (size === 0) {
        const trailerEnd = buf.indexOf("\r\n\r\n", lineEnd);
        if (trailerEnd === lineEnd) return { consumed: lineEnd + 4, body: Buffer.concat(parts) };
        const simple = buf.indexOf("\r\n", lineEnd + 2);
        if (simple === lineEnd + 2) return { consumed: lineEnd + 4, body: Buffer.concat(parts) };
        if (trailerEnd < 0) return null;
        return { consumed: trailerEnd + 4, body: Buffer.concat(parts) };
      }
      if (buf.length < lineEnd + 2 + size + 2) return null;
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      pos = lineEnd + 2 + size + 2;
    }
  }
  if (contentLength !== undefined && !Number.isNaN(contentLength)) {
    if (buf.length < start + contentLength) return null;
    return { consumed: start + contentLength, body: buf.subarray(start, start + contentLength) };
  }
  if (!eof) return null;
  return { consumed: buf.length, body: buf.subarray(start) };
}

/** Hot processes of one route; at most `max` at a time, callers queue beyond that. */
export class HotPool {
  readonly procs = new Set<HotProcess>();
  private waiters: (() => void)[] = [];

  async acquire(max: number, create: () => HotProcess): Promise<HotProcess> {
    for (const p of this.procs) {
      if (!p.busy && !p.exited && !p.retired) {
        if (p.idleTimer) clearTimeout(p.idleTimer);
        p.busy = true;
        return p;
      }
    }
    if (this.procs.size < Math.max(1, max)) {
      const p = create();
      p.busy = true;
      this.procs.add(p);
      p.onExit(() => {
        this.procs.delete(p);
        this.wakeNext();
      });
      return p;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.acquire(max, create);
  }

  release(p: HotProcess, idleTimeoutS: number): void {
    p.busy = false;
    if (idleTimeoutS <= 0) {
      p.kill();
    } else {
      p.idleTimer = setTimeout(() => p.kill(), Math.min(idleTimeoutS * 1000, 2 ** 31 - 1));
    }
    this.wakeNext();
  }

  private wakeNext(): void {
    const w = this.waiters.shift();
    // The waiter re-runs acquire(), which picks up the freed slot.
    w?.();
  }

  killAll(): void {
    for (const p of this.procs) p.kill();
  }
}
