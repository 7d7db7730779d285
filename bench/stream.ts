/** Large transfers (through bench/stream-client.ts) and a resident-memory sampler for a process. */
import { readFileSync } from "node:fs";
import { log, readJsonLine, startHelper, stop } from "./children.ts";
import { round } from "./wrk.ts";

type ClientResult = { bytes: number; seconds: number; status: number } | { error: string };

/** MB/s with MB = 10^6 bytes. */
export async function transfer(
  label: string,
  mode: "upload" | "download",
  url: string,
  bytes: number,
): Promise<number> {
  const child = startHelper(`${mode} ${label}`, "stream-client.ts", [mode, url, String(bytes)]);
  try {
    // Generous: even 20 MB/s moves 1 GiB in under a minute.
    const result = await readJsonLine<ClientResult>(child, 120_000);
    if ("error" in result) throw new Error(`${label} ${mode}: ${result.error}`);
    const mbPerS = round(result.bytes / 1e6 / result.seconds, 1);
    log(
      `${label} ${mode}: ${(bytes / 1024 ** 2).toFixed(0)} MiB in ${result.seconds.toFixed(2)} s = ${mbPerS} MB/s`,
    );
    return mbPerS;
  } finally {
    await stop(child);
  }
}

export function rssKib(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** Samples VmRSS every `intervalMs`; `stop()` returns the baseline and the peak in MiB. */
export function sampleRss(pid: number, intervalMs = 50) {
  const baseline = rssKib(pid);
  let peak = baseline;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssKib(pid));
    } catch {
      // The process went away; the caller sees that elsewhere.
    }
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      try {
        peak = Math.max(peak, rssKib(pid));
      } catch {}
      return { baselineMib: round(baseline / 1024, 1), peakMib: round(peak / 1024, 1) };
    },
  };
}
