import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const cliPath = fileURLToPath(new URL("../../bin/picasso-api.mjs", import.meta.url));

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export type CliProcess = {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/** Runs `picasso-api` as a user would, with a clean environment plus `env`. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  options: { cwd?: string } = {},
): CliProcess {
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

/** Polls `url` until it answers (any status) or `timeoutMs` passes. */
export async function waitForHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`${url} did not answer in ${timeoutMs} ms: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * POSTs JSON to a serve process started without authentication and expects 200 (the body is in
 * the failure message); tests use it to create apps and routes through the API.
 */
export async function postJsonOk(
  base: string,
  path: string,
  body: unknown,
): Promise<{ app?: { name: string } }> {
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`POST ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as { app?: { name: string } };
}

export type ServeProcess = { server: CliProcess; port: number; base: string };

/**
 * `picasso-api serve` as an operator starts it, without authentication, on a free loopback port
 * in front of `functionsUrl`, plus `args`; resolves once `/healthcheck` answers. A process that
 * never answers is killed and its output is in the error.
 */
export async function startNoAuthServe(options: {
  functionsUrl: string;
  env: Record<string, string>;
  args?: string[];
}): Promise<ServeProcess> {
  const port = await freePort();
  const server = runCli(
    [
      "serve",
      "--auth-strategy",
      "noauth",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--functions-url",
      options.functionsUrl,
      ...(options.args ?? []),
    ],
    options.env,
  );
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${base}/healthcheck`, 30_000);
  } catch (error) {
    server.child.kill("SIGKILL");
    throw new Error(`${String(error)}\n${server.output()}`);
  }
  return { server, port, base };
}
