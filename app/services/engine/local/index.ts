import { randomUUID } from "node:crypto";
import { stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import type { Readable, Writable } from "node:stream";
import type { ErrorCode } from "../../../lib/errors.ts";
import { errorBody } from "../../../lib/errors.ts";
import type { Logger } from "../../../lib/logger.ts";
import {
  type EngineApp,
  type EngineCall,
  EngineError,
  type EngineRoute,
  type FunctionEngine,
} from "../types.ts";
import { functionEnvironment, getPayload } from "./environment.ts";
import { resolveExecutable } from "./image.ts";
import { ConcurrencyLimiter, NoSlot } from "./limiter.ts";
import { type Exit, type FunctionProcess, startFunction } from "./process.ts";
import { sniffContentType } from "./sniff.ts";

export type LocalEngineOptions = {
  /** Absolute path of an existing directory holding the function executables. */
  directory: string;
  logger: Logger;
  /** PATH and LANG for function processes (HOME is a temporary directory); nothing else leaks in. */
  baseEnv: { PATH: string; LANG: string };
  /** Calls that may wait per route once `max_concurrency` are running (default 32). */
  queueLimit?: number;
  /** How long a call may wait for a free slot before 503 (default 10 s). */
  queueWaitMs?: number;
  /** Bytes of each call's stderr copied to the log (default 64 KiB). */
  maxStderrBytes?: number;
  /** Bytes of an async call's output copied to the log (default 4 KiB). */
  maxAsyncOutputBytes?: number;
};

export interface LocalEngine extends FunctionEngine {
  /** Function processes running and calls waiting for a slot: for tests and metrics. */
  activity(): { running: number; waiting: number; processes: number };
}

/** Shared state of one invocation's process, read once it has exited. */
type RunState = { timedOut: boolean; inputError?: unknown };

type Launched = { proc: FunctionProcess; exit: Promise<Exit>; state: RunState };

/**
 * Runs each call of a route as a local process under IronFunctions' function contract (see
 * README, "Local function runner"). Apps and routes live in MySQL; the runner keeps only a
 * record of what it was told, for `listApps`/`listRoutes`, and needs none of it to invoke: the
 * call carries the route and the app config. So its CRUD is idempotent and a restart loses
 * nothing.
 */
export function createLocalEngine(options: LocalEngineOptions): LocalEngine {
  const { directory, logger } = options;
  const limiter = new ConcurrencyLimiter({
    queueLimit: options.queueLimit ?? 32,
    queueWaitMs: options.queueWaitMs ?? 10_000,
  });
  const maxStderrBytes = options.maxStderrBytes ?? 64 * 1024;
  const maxAsyncOutputBytes = options.maxAsyncOutputBytes ?? 4 * 1024;
  const baseEnv = { ...options.baseEnv, HOME: tmpdir() };
  const apps = new Map<string, Record<string, string>>();
  const routes = new Map<string, Map<string, EngineRoute>>();
  const processes = new Set<FunctionProcess>();
  const shutdown = new AbortController();

  async function checkRoute(route: EngineRoute): Promise<void> {
    if (route.format === "http") {
      throw new EngineError(
        "invalid",
        'format: "http" (hot functions) is not supported by the local function runner, which starts a fresh process per call; use "default"',
        400,
      );
    }
    await resolveExecutable(directory, route.image);
  }

  function routesOf(app: string): Map<string, EngineRoute> {
    let known = routes.get(app);
    if (!known) {
      known = new Map();
      routes.set(app, known);
    }
    if (!apps.has(app)) apps.set(app, {});
    return known;
  }

  /** Starts the process and wires timeout, abort, stdin and stderr; `release` frees the slot at exit. */
  function launch(
    call: EngineCall,
    file: string,
    release: () => void,
    log: Logger,
    signal: AbortSignal,
  ): Launched {
    let proc: FunctionProcess;
    try {
      proc = startFunction(file, { env: functionEnvironment(call, baseEnv), cwd: directory });
    } catch (error) {
      // spawn() refused synchronously: the slot must not stay taken.
      release();
      throw error;
    }
    processes.add(proc);
    const state: RunState = { timedOut: false };
    // IronFunctions treats a zero timeout as its default of 30 s; so does the runner.
    const timeoutSeconds = call.route.timeout > 0 ? call.route.timeout : 30;
    const timer = setTimeout(() => {
      state.timedOut = true;
      proc.kill();
    }, timeoutSeconds * 1000);
    const onAbort = () => proc.kill();
    signal.addEventListener("abort", onAbort, { once: true });
    const exit = proc.exited.then((outcome) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      processes.delete(proc);
      release();
      return outcome;
    });
    copyStderr(proc.stderr, log, maxStderrBytes);
    feedStdin(proc.stdin, call).catch((error: unknown) => {
      // The request body failed (too large, client gone): the function must not run on half of it.
      state.inputError = error;
      proc.kill();
    });
    return { proc, exit, state };
  }

  async function invokeSync(call: EngineCall, file: string, log: Logger): Promise<Response> {
    const key = routeKey(call);
    let release: () => void;
    try {
      release = await limiter.acquire(key, call.route.maxConcurrency, call.signal);
    } catch (error) {
      if (error instanceof NoSlot) return busy(call, log, error);
      throw clientGone(call.signal, error);
    }
    const { proc, exit, state } = launch(call, file, release, log, call.signal);
    const output = proc.stdout[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
    const first = await output.next();
    if (first.done) {
      const outcome = await exit;
      if (state.inputError) throw state.inputError;
      if (call.signal.aborted) throw clientGone(call.signal);
      return finishedWithoutOutput(call, outcome, state, log);
    }
    const headers = routeResponseHeaders(call.route);
    if (!headers.has("content-type")) headers.set("content-type", sniffContentType(first.value));
    // Streamed as produced: pull() asks for the next chunk only when the client took the last.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(first.value);
      },
      async pull(controller) {
        try {
          const next = await output.next();
          if (!next.done) {
            controller.enqueue(next.value);
            return;
          }
          const outcome = await exit;
          const problem = failureAfterOutput(outcome, state, call.signal);
          if (!problem) {
            controller.close();
            return;
          }
          // Status 200 is already sent: cutting the body short is the only way left to say so.
          log.warn("function failed after its output started; response cut short", { problem });
          controller.error(new Error(problem));
        } catch (error) {
          controller.error(error);
        }
      },
      cancel() {
        proc.kill();
        void output.return?.();
      },
    });
    return new Response(body, { status: 200, headers });
  }

  async function invokeAsync(call: EngineCall, file: string, log: Logger): Promise<Response> {
    // The request ends with the 202, so its body is read now (the gateway's size limit applies).
    const payload = await readAll(call.body);
    const key = routeKey(call);
    let slot: Promise<() => void>;
    try {
      slot = limiter.acquire(key, call.route.maxConcurrency, shutdown.signal);
    } catch (error) {
      if (error instanceof NoSlot) return busy(call, log, error);
      throw error;
    }
    const callId = randomUUID();
    const callLog = log.child({ call_id: callId });
    const queued: EngineCall = {
      ...call,
      body: payload ? singleChunk(payload) : null,
      signal: shutdown.signal,
    };
    slot
      .then(
        (release) => runInBackground(queued, file, release, callLog),
        (error: unknown) =>
          callLog.warn("async call dropped before it ran", {
            reason: error instanceof Error ? error.message : String(error),
          }),
      )
      // Nobody awaits a background call: a failure must end in the log, not as an unhandled rejection.
      .catch((error: unknown) => callLog.error("async call failed to run", { error }));
    return new Response(JSON.stringify({ call_id: callId }), {
      status: 202,
      headers: { "content-type": "application/json" },
    });
  }

  async function runInBackground(
    call: EngineCall,
    file: string,
    release: () => void,
    log: Logger,
  ): Promise<void> {
    if (shutdown.signal.aborted) {
      release();
      log.warn("async call dropped: the runner is shutting down");
      return;
    }
    log.info("async call started");
    const { proc, exit, state } = launch(call, file, release, log, shutdown.signal);
    let output = "";
    let outputBytes = 0;
    proc.stdout.on("data", (chunk: Buffer) => {
      if (outputBytes < maxAsyncOutputBytes)
        output += chunk.subarray(0, maxAsyncOutputBytes - outputBytes).toString("utf8");
      outputBytes += chunk.byteLength;
    });
    const outcome = await exit;
    const fields = {
      exit_code: outcome.code,
      output: output.trimEnd(),
      output_bytes: outputBytes,
      ...(outputBytes > maxAsyncOutputBytes ? { output_truncated: true } : {}),
    };
    if (state.timedOut) log.warn("async call timed out", { ...fields, timeout_s: call.route.timeout });
    else if (outcome.spawnError)
      log.warn("async call could not start", { error: outcome.spawnError.message });
    else if (outcome.code !== 0) log.warn("async call failed", fields);
    else log.info("async call finished", fields);
  }

  function finishedWithoutOutput(call: EngineCall, outcome: Exit, state: RunState, log: Logger): Response {
    if (state.timedOut) {
      log.info("function timed out", { timeout_s: call.route.timeout });
      return failure(call, "gateway_timeout", "Timed out");
    }
    if (outcome.spawnError) {
      log.warn("function could not start", { error: outcome.spawnError.message });
      return failure(
        call,
        "function_error",
        `cannot start ${call.route.image}: ${outcome.spawnError.message}`,
      );
    }
    if (outcome.code !== 0) {
      log.info("function failed", { exit_code: outcome.code });
      return failure(call, "function_error", `exit code ${outcome.code}`);
    }
    return new Response(null, { status: 200, headers: routeResponseHeaders(call.route) });
  }

  function busy(call: EngineCall, log: Logger, reason: NoSlot): Response {
    log.warn("route busy, call refused", {
      reason: reason.reason,
      max_concurrency: call.route.maxConcurrency,
    });
    return failure(
      call,
      "service_unavailable",
      `Route ${call.route.path} is busy (${reason.message}); retry later`,
      {
        "retry-after": "1",
      },
    );
  }

  return {
    kind: "local",

    async createApp(app: EngineApp) {
      apps.set(app.name, { ...app.config });
    },
    async updateAppConfig(name, next) {
      apps.set(name, { ...next });
    },
    async deleteApp(name) {
      apps.delete(name);
      routes.delete(name);
    },
    async listApps() {
      return [...apps.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([name, config]) => ({ name, config: { ...config } }));
    },
    async createRoute(app, route) {
      await checkRoute(route);
      routesOf(app).set(route.path, structuredClone(route));
    },
    async updateRoute(app, next) {
      await checkRoute(next);
      routesOf(app).set(next.path, structuredClone(next));
    },
    async deleteRoute(app, path) {
      routes.get(app)?.delete(path);
    },
    async listRoutes(app) {
      return [...(routes.get(app)?.values() ?? [])].map((route) => structuredClone(route));
    },

    async invoke(call) {
      if (shutdown.signal.aborted)
        throw new EngineError("unavailable", "the local function runner has shut down");
      const log = logger.child({ request_id: call.requestId, app: call.engineApp, route: call.route.path });
      if (call.route.format === "http") {
        return failure(call, "function_error", 'format "http" is not supported by the local function runner');
      }
      let file: string;
      try {
        file = await resolveExecutable(directory, call.route.image);
      } catch (error) {
        if (!(error instanceof EngineError)) throw error;
        log.warn("function image not runnable", { error: error.message });
        return failure(call, "function_error", error.message);
      }
      return call.route.type === "async" ? invokeAsync(call, file, log) : invokeSync(call, file, log);
    },

    async ping() {
      try {
        if (!(await stat(directory)).isDirectory()) throw new Error("not a directory");
      } catch (error) {
        throw new EngineError("unavailable", `functions directory unusable: ${(error as Error).message}`);
      }
    },

    async close() {
      shutdown.abort(new EngineError("unavailable", "the local function runner has shut down"));
      for (const proc of processes) proc.kill();
    },

    activity() {
      return { ...limiter.activity(), processes: processes.size };
    },
  };
}

function routeKey(call: EngineCall): string {
  return `${call.engineApp}\u0000${call.route.path}`;
}

/** Route `headers` go on every answer, first value only, as IronFunctions adds them. */
function routeResponseHeaders(route: EngineRoute): Headers {
  const headers = new Headers();
  for (const [name, values] of Object.entries(route.headers)) {
    const first = values[0];
    if (first === undefined) continue;
    try {
      headers.set(name, first);
    } catch {
      // A name or value HTTP cannot carry: the route keeps working without it.
    }
  }
  return headers;
}

function failure(
  call: EngineCall,
  code: ErrorCode,
  message: string,
  extra: Record<string, string> = {},
): Response {
  const headers = routeResponseHeaders(call.route);
  headers.set("content-type", "application/json");
  for (const [name, value] of Object.entries(extra)) headers.set(name, value);
  const status = code === "gateway_timeout" ? 504 : code === "service_unavailable" ? 503 : 500;
  return new Response(JSON.stringify(errorBody(code, message)), { status, headers });
}

function failureAfterOutput(outcome: Exit, state: RunState, signal: AbortSignal): string | null {
  if (state.inputError)
    return `request body failed: ${String((state.inputError as Error).message ?? state.inputError)}`;
  if (signal.aborted) return "client went away";
  if (state.timedOut) return "timed out";
  if (outcome.code !== 0) return `exit code ${outcome.code}`;
  return null;
}

function clientGone(signal: AbortSignal, error?: unknown): unknown {
  if (signal.aborted) return new EngineError("failed", "the client went away", undefined, { cause: error });
  return error;
}

/**
 * stdin under IronFunctions' contract: the body for methods that carry one, the `payload` query
 * value for GET, nothing otherwise. When the function stops reading, the rest of the body is
 * read and dropped (the gateway's size limit still applies), as IronFunctions does.
 */
async function feedStdin(stdin: Writable, call: EngineCall): Promise<void> {
  if (call.method.toUpperCase() === "GET") {
    stdin.end(getPayload(call.query));
    return;
  }
  if (!call.body) {
    stdin.end();
    return;
  }
  let open = true;
  for await (const chunk of call.body as unknown as AsyncIterable<Uint8Array>) {
    if (!open) continue;
    if (stdin.destroyed || stdin.writableEnded) {
      open = false;
      continue;
    }
    if (!stdin.write(chunk)) open = await drained(stdin);
  }
  if (open) stdin.end();
}

function drained(stdin: Writable): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (result: boolean) => () => {
      stdin.off("drain", onDrain);
      stdin.off("close", onClose);
      stdin.off("error", onClose);
      resolve(result);
    };
    const onDrain = done(true);
    const onClose = done(false);
    stdin.once("drain", onDrain);
    stdin.once("close", onClose);
    stdin.once("error", onClose);
  });
}

/** Function stderr goes to the log at debug level, a line at a time, up to `limit` bytes a call. */
function copyStderr(stderr: Readable, log: Logger, limit: number): void {
  let logged = 0;
  let pending = "";
  let full = false;
  const emit = (line: string) => {
    if (full) return;
    if (logged + line.length > limit) {
      full = true;
      log.debug("function stderr truncated", { limit_bytes: limit });
      return;
    }
    logged += line.length;
    log.debug("function stderr", { line: line.length > 2000 ? `${line.slice(0, 2000)}...` : line });
  };
  stderr.setEncoding("utf8");
  // Always read, even past the limit: a function blocked on a full stderr pipe would hang.
  stderr.on("data", (text: string) => {
    if (full) return;
    pending += text;
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      emit(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
    }
    if (pending.length > 2000) {
      emit(pending);
      pending = "";
    }
  });
  stderr.on("end", () => {
    if (pending) emit(pending);
  });
}

async function readAll(body: EngineCall["body"]): Promise<Uint8Array | null> {
  if (!body) return null;
  const chunks: Uint8Array[] = [];
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function singleChunk(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}
