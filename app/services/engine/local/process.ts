import { type ChildProcessByStdio, spawn } from "node:child_process";
import { constants as osConstants } from "node:os";
import type { Readable, Writable } from "node:stream";

export type Exit = {
  /** As a container runtime reports it: the exit status, or 128 + signal number. */
  code: number;
  /** Set when the executable could not be started at all. */
  spawnError?: Error;
};

export type FunctionProcess = {
  pid: number | undefined;
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  exited: Promise<Exit>;
  /** Kills the whole process group: whatever the function started goes with it. */
  kill(): void;
};

/**
 * Starts `file` in a process group of its own (detached), so that a timeout, a disconnect or the
 * end of the function can kill everything it started, as removing a container would.
 */
export function startFunction(
  file: string,
  options: { env: Record<string, string>; cwd: string },
): FunctionProcess {
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(file, [], {
    cwd: options.cwd,
    env: options.env,
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  // A function that exits without reading its input must not take Picasso down with EPIPE.
  child.stdin.on("error", () => {});
  child.stdout.on("error", () => {});
  child.stderr.on("error", () => {});
  const pid = child.pid;
  const kill = () => killGroup(pid);
  const exited = new Promise<Exit>((resolve) => {
    child.once("error", (error) => {
      // Only a failed spawn leaves no pid; later errors (kill failures) are not exits.
      if (child.pid === undefined) resolve({ code: 127, spawnError: error });
    });
    child.once("exit", (code, signal) => {
      // The function is over once its main process is: leftovers holding stdout open go too.
      kill();
      resolve({ code: exitCodeOf(code, signal) });
    });
  });
  return { pid, stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exited, kill };
}

export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Already gone (ESRCH): nothing left to stop.
  }
}

export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal) return 128 + ((osConstants.signals as Record<string, number>)[signal] ?? 0);
  return -1;
}
