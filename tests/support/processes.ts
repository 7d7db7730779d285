import { readdirSync, readFileSync } from "node:fs";

/**
 * Process state from /proc. A zombie counts as gone: it runs nothing, and in containers whose
 * PID 1 does not reap orphans it may linger after being killed.
 */
function stateOf(pid: number): { state: string; pgrp: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may contain spaces: parse after its closing one.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", pgrp: Number(fields[2]) };
  } catch {
    return null;
  }
}

export function isRunning(pid: number): boolean {
  const info = stateOf(pid);
  return info !== null && info.state !== "Z" && info.state !== "X";
}

/** Live members of the process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const info = stateOf(pid);
    if (info && info.pgrp === pgid && info.state !== "Z" && info.state !== "X") members.push(pid);
  }
  return members;
}

/** Polls until `condition` holds; fails with `what` if it never does. */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
