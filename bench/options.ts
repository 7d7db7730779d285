/**
 * The benchmark's settings: flag beats environment beats default, like the service's own config.
 * The only module of the harness that reads `process.env` for settings.
 */
import { parseArgs } from "node:util";

export type BenchOptions = {
  quick: boolean;
  /** Seconds of measured load per small-body target. */
  durationS: number;
  /** Seconds of discarded load before each target's first measured run. */
  warmupS: number;
  /** Measured runs per target, interleaved across targets so drift in machine load hits all alike. */
  rounds: number;
  connections: number;
  threads: number;
  /** Bytes per streaming upload and download. */
  streamBytes: number;
  /** Uploads and downloads per target, in the rounds' alternating order: one 1 GiB transfer swings by a quarter. */
  streamRounds: number;
  /** nginx is a reference only: a machine without it (or without apt) still gets the rest. */
  nginx: boolean;
  /** MariaDB server URI the bench database is created on (without a database name). */
  mysqlUri: string;
};

const usage = `usage: npm run bench -- [--quick] [--duration S] [--warmup S] [--rounds N] [--connections N]
                          [--threads N] [--stream-mib N] [--stream-rounds N] [--no-nginx]
environment: BENCH_DURATION, BENCH_WARMUP, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_THREADS,
             BENCH_STREAM_MIB, BENCH_STREAM_ROUNDS, BENCH_NGINX=0,
             BENCH_MYSQL (default mysql://root@127.0.0.1:3306/)`;

export function loadOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${usage}`);
  }
  if (values.help) {
    process.stderr.write(`${usage}\n`);
    process.exit(0);
  }
  const quick = values.quick === true;
  const pick = (flag: keyof typeof values, envName: string, fallback: number, min: number): number => {
    const raw = values[flag] ?? env[envName];
    if (raw === undefined || raw === "") return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min) {
      throw new Error(`--${flag} (${envName}) must be a number >= ${min}, not ${String(raw)}`);
    }
    return value;
  };
  const streamMib = pick("stream-mib", "BENCH_STREAM_MIB", quick ? 64 : 1024, 1);
  const rounds = Math.round(pick("rounds", "BENCH_ROUNDS", 1, 1));
  return {
    quick,
    durationS: Math.round(pick("duration", "BENCH_DURATION", quick ? 2 : 10, 1)),
    warmupS: Math.round(pick("warmup", "BENCH_WARMUP", quick ? 1 : 3, 0)),
    rounds,
    connections: Math.round(pick("connections", "BENCH_CONNECTIONS", 50, 1)),
    threads: Math.round(pick("threads", "BENCH_THREADS", 2, 1)),
    streamBytes: Math.round(streamMib * 1024 * 1024),
    streamRounds: Math.round(
      pick("stream-rounds", "BENCH_STREAM_ROUNDS", Math.max(rounds, quick ? 1 : 3), 1),
    ),
    nginx: values["no-nginx"] !== true && env.BENCH_NGINX !== "0",
    mysqlUri: env.BENCH_MYSQL || "mysql://root@127.0.0.1:3306/",
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: "boolean" },
      duration: { type: "string" },
      warmup: { type: "string" },
      rounds: { type: "string" },
      connections: { type: "string" },
      threads: { type: "string" },
      "stream-mib": { type: "string" },
      "stream-rounds": { type: "string" },
      "no-nginx": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}
