/**
 * Small-body load with wrk: a discarded warm-up, then the measured run. Headers that carry
 * credentials go through a Lua file readable only by us, never through argv (visible in `ps`).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { log, output, start } from "./children.ts";
import { cpuMs } from "./cpu.ts";
import { ensureInstalled } from "./debian.ts";

export const wrkBinary = "/usr/bin/wrk";

export type LoadResult = {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  requests: number;
  /** Non-2xx/3xx answers plus socket errors: a run with errors measured something else. */
  errors: number;
  /** CPU time of the server under test (not the engine behind it) per request, in microseconds. */
  cpu_us_per_req: number | null;
};

export type LoadSettings = { durationS: number; warmupS: number; connections: number; threads: number };

export async function ensureWrk(): Promise<string> {
  await ensureInstalled(wrkBinary, "wrk");
  const child = start({ name: "wrk -v", command: wrkBinary, args: ["-v"], captureStdout: true });
  const { stdout } = await output(child, 5000);
  return /wrk (\S+)/.exec(stdout)?.[1] ?? "unknown";
}

export async function runLoad(
  label: string,
  url: string,
  settings: LoadSettings,
  options: { headers?: Record<string, string>; serverPid?: number } = {},
): Promise<LoadResult> {
  const headers = options.headers ?? {};
  const scriptDir = mkdtempSync(join(tmpdir(), "bench-wrk-"));
  try {
    const script = join(scriptDir, "headers.lua");
    const lines = Object.entries(headers).map(([name, value]) => `wrk.headers[${lua(name)}] = ${lua(value)}`);
    writeFileSync(script, `${lines.join("\n")}\n`, { mode: 0o600 });
    const args = (seconds: number) => [
      `-t${settings.threads}`,
      `-c${settings.connections}`,
      `-d${seconds}s`,
      "--latency",
      "-s",
      script,
      url,
    ];
    if (settings.warmupS > 0) {
      log(`${label}: warm-up ${settings.warmupS} s`);
      await wrk(args(settings.warmupS), settings.warmupS);
    }
    log(
      `${label}: ${settings.durationS} s, ${settings.connections} connections, ${settings.threads} threads`,
    );
    const cpuBefore = options.serverPid ? cpuMs(options.serverPid) : undefined;
    const result = parseWrk(await wrk(args(settings.durationS), settings.durationS));
    if (cpuBefore !== undefined && options.serverPid && result.requests > 0) {
      result.cpu_us_per_req = round(((cpuMs(options.serverPid) - cpuBefore) * 1000) / result.requests, 1);
    }
    log(
      `${label}: ${result.rps} req/s, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, errors ${result.errors}, ` +
        `${result.cpu_us_per_req ?? "?"} µs CPU/request`,
    );
    return result;
  } finally {
    rmSync(scriptDir, { recursive: true, force: true });
  }
}

async function wrk(args: string[], seconds: number): Promise<string> {
  const child = start({ name: "wrk", command: wrkBinary, args, captureStdout: true });
  const { code, stdout } = await output(child, (seconds + 30) * 1000);
  if (code !== 0) throw new Error(`wrk exited ${code}: ${stdout.slice(-300)}`);
  return stdout;
}

const lua = (text: string) => JSON.stringify(text);

const latencyUnits: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function latencyMs(text: string, percentile: string): number {
  const match = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, "m").exec(text);
  if (!match) throw new Error(`wrk output has no ${percentile}% latency`);
  return round(Number(match[1]) * (latencyUnits[match[2] ?? "ms"] ?? 1), 3);
}

export function parseWrk(text: string): LoadResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  const requests = /^\s*(\d+) requests in /m.exec(text);
  if (!rps || !requests) throw new Error(`unreadable wrk output: ${text.slice(0, 300)}`);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket ? socket.slice(1).reduce((sum, value) => sum + Number(value), 0) : 0;
  return {
    rps: round(Number(rps[1]), 0),
    p50_ms: latencyMs(text, "50"),
    p99_ms: latencyMs(text, "99"),
    requests: Number(requests[1]),
    errors: non2xx + socketErrors,
    cpu_us_per_req: null,
  };
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

/** Rounds of equal length: mean rps, median percentiles, CPU per request over all requests. */
export function combineRounds(rounds: LoadResult[]): LoadResult & { rps_rounds?: number[] } {
  const [only] = rounds;
  if (rounds.length === 1 && only) return only;
  const requests = rounds.reduce((sum, each) => sum + each.requests, 0);
  const withCpu = rounds.filter((each) => each.cpu_us_per_req !== null);
  const cpuRequests = withCpu.reduce((sum, each) => sum + each.requests, 0);
  return {
    rps: round(rounds.reduce((sum, each) => sum + each.rps, 0) / rounds.length, 0),
    p50_ms: round(median(rounds.map((each) => each.p50_ms)), 3),
    p99_ms: round(median(rounds.map((each) => each.p99_ms)), 3),
    requests,
    errors: rounds.reduce((sum, each) => sum + each.errors, 0),
    cpu_us_per_req:
      withCpu.length === rounds.length && cpuRequests > 0
        ? round(
            withCpu.reduce((sum, each) => sum + (each.cpu_us_per_req ?? 0) * each.requests, 0) / cpuRequests,
            1,
          )
        : null,
    rps_rounds: rounds.map((each) => each.rps),
  };
}

export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
