/**
 * Every process the benchmark starts goes through here, so one `stopAll()` (normal end, failure or
 * Ctrl-C) stops them all. Each server runs in its own process: nothing measured shares an event loop
 * with the harness or with another server.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../", import.meta.url));
export const benchDir = fileURLToPath(new URL("./", import.meta.url));

export type Child = {
  name: string;
  process: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or signal name) once the process has gone. */
  exited: Promise<number | string>;
};

const running = new Set<Child>();

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

type StartOptions = {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Child stdout is relayed to stderr unless the caller reads it (the harness's stdout is the result). */
  captureStdout?: boolean;
};

/** Set once everything is being stopped: nothing new may start behind the cleanup's back. */
let stopping = false;

export function start(options: StartOptions): Child {
  if (stopping) throw new Error(`not starting ${options.name}: the benchmark is stopping`);
  const child = spawn(options.command, options.args, {
    cwd: options.cwd ?? repoRoot,
    env: options.env ?? process.env,
    // stdin is a lifeline: our helpers exit when it closes, even if the harness is SIGKILLed.
    stdio: ["pipe", "pipe", "pipe"],
  });
  if (child.pid === undefined) {
    // spawn reports ENOENT asynchronously; give the error event a chance to say why.
    throw new Error(`cannot start ${options.name} (${options.command})`);
  }
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
    child.once("error", () => resolve("spawn error"));
  });
  const handle: Child = { name: options.name, process: child, pid: child.pid, exited };
  running.add(handle);
  void exited.then(() => running.delete(handle));
  prefixLines(child.stderr, options.name);
  if (!options.captureStdout) prefixLines(child.stdout, options.name);
  return handle;
}

function prefixLines(stream: NodeJS.ReadableStream | null, name: string): void {
  if (!stream) return;
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (text: string) => {
    pending += text;
    let newline = pending.indexOf("\n");
    while (newline !== -1) {
      process.stderr.write(`[${name}] ${pending.slice(0, newline)}\n`);
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
    }
  });
  stream.on("end", () => {
    if (pending) process.stderr.write(`[${name}] ${pending}\n`);
  });
}

/** A helper started from bench/*.ts, run by the same Node with tsx's loader. */
export function startHelper(name: string, script: string, args: string[]): Child {
  return start({
    name,
    command: process.execPath,
    args: ["--import", "tsx", `${benchDir}${script}`, ...args],
    captureStdout: true,
  });
}

/** Our helpers print one JSON line on stdout when ready (servers) or done (clients). */
export async function readJsonLine<T>(child: Child, timeoutMs: number): Promise<T> {
  const stdout = child.process.stdout;
  if (!stdout) throw new Error(`${child.name}: no stdout`);
  stdout.setEncoding("utf8");
  let buffered = "";
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => finish(new Error(`${child.name}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onData = (text: string) => {
      buffered += text;
      const newline = buffered.indexOf("\n");
      if (newline === -1) return;
      try {
        finish(undefined, JSON.parse(buffered.slice(0, newline)) as T);
      } catch {
        finish(new Error(`${child.name}: unreadable output ${buffered.slice(0, 200)}`));
      }
    };
    const onExit = (code: number | string) =>
      finish(new Error(`${child.name} exited (${code}) before answering`));
    function finish(error?: Error, value?: T) {
      clearTimeout(timer);
      stdout?.off("data", onData);
      child.process.off("exit", onExit);
      if (error) reject(error);
      else resolve(value as T);
    }
    stdout.on("data", onData);
    child.process.once("exit", onExit);
  });
}

/** Collects a child's whole stdout and waits for it to exit (for wrk and one-shot commands). */
export async function output(
  child: Child,
  timeoutMs: number,
): Promise<{ code: number | string; stdout: string }> {
  let stdout = "";
  child.process.stdout?.setEncoding("utf8");
  child.process.stdout?.on("data", (text: string) => {
    stdout += text;
  });
  const timer = setTimeout(() => void stop(child), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, stdout };
}

/** SIGTERM, then SIGKILL if it lingers. */
export async function stop(child: Child, graceMs = 5000): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill("SIGTERM");
  const timer = setTimeout(() => child.process.kill("SIGKILL"), graceMs);
  await child.exited;
  clearTimeout(timer);
}

export function preventNewChildren(): void {
  stopping = true;
}

export async function stopAll(): Promise<void> {
  stopping = true;
  await Promise.all([...running].map((child) => stop(child)));
}

/** A port that was free a moment ago, for servers that cannot report the one they bound. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (typeof address !== "object" || !address) throw new Error("no port");
  return address.port;
}

export async function waitForHttp(url: string, timeoutMs: number, child?: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    if (child && (child.process.exitCode !== null || child.process.signalCode !== null)) {
      throw new Error(`${child.name} exited (${child.process.exitCode ?? child.process.signalCode})`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${lastError})`);
}
