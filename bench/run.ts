/**
 * `npm run bench`: Picasso's invocation proxy against a bare Node proxy and nginx, in front of the
 * same engine stand-in, on loopback. Progress goes to stderr; stdout gets one JSON line.
 * See bench/README.md for what each figure means.
 */
import { execFileSync } from "node:child_process";
import { availableParallelism, cpus, loadavg } from "node:os";
import {
  type Child,
  log,
  preventNewChildren,
  readJsonLine,
  repoRoot,
  startHelper,
  stop,
  stopAll,
} from "./children.ts";
import { type Nginx, startNginx } from "./nginx.ts";
import { loadOptions } from "./options.ts";
import { cleanupPicasso, type Picasso, PicassoError, restartPicasso, startPicasso } from "./picasso.ts";
import { sampleRss, transfer } from "./stream.ts";
import { combineRounds, ensureWrk, type LoadResult, median, round, runLoad } from "./wrk.ts";

type Failure = { error: string };
type Skipped = { skipped: string };
type SmallFigure = LoadResult | Failure | Skipped | null;
type StreamFigure = number | null;

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

let cleaningUp: Promise<void> | undefined;
let nginx: Nginx | undefined;

function cleanup(): Promise<void> {
  cleaningUp ??= (async () => {
    preventNewChildren();
    await cleanupPicasso();
    await nginx?.stop().catch((error: Error) => log(`cleanup nginx: ${error.message}`));
    await stopAll();
  })();
  return cleaningUp;
}

let interrupted = false;

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    interrupted = true;
    log(`${signal}: stopping everything`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** After Ctrl-C the remaining steps would only fail noisily against stopped servers. */
function checkInterrupted(): void {
  if (interrupted) throw new Error("interrupted");
}

/** The code measured: HEAD, marked when the working tree has changes. */
function commit(): string | null {
  try {
    const git = (args: string[]) => execFileSync("git", args, { cwd: repoRoot, encoding: "utf8" }).trim();
    const head = git(["rev-parse", "--short=12", "HEAD"]);
    return git(["status", "--porcelain", "--untracked-files=no"]) ? `${head}+dirty` : head;
  } catch {
    return null;
  }
}

async function startServer(
  name: string,
  script: string,
  args: string[],
): Promise<{ child: Child; port: number }> {
  const child = startHelper(name, script, args);
  const { port } = await readJsonLine<{ port: number }>(child, 15_000);
  return { child, port };
}

/** One request before any load: a target answering 404 or 500 must not be timed as if it worked. */
async function check(url: string, headers: Record<string, string> = {}): Promise<void> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(15_000) });
  const body = await response.text();
  if (response.status !== 200 || body !== "ok") {
    throw new Error(`GET ${new URL(url).pathname} answered ${response.status}: ${body.slice(0, 200)}`);
  }
}

/**
 * Round `round`'s order: the list forward, then backward, and so on, so no target always runs
 * right after the same neighbour (nginx's burst of small requests, say, leaves the engine and the
 * machine slower for a moment). Rotating instead would keep every target's predecessor.
 */
function orderOfRound<T>(items: T[], round: number): T[] {
  return round % 2 === 0 ? items : [...items].reverse();
}

/** A target's name in the progress log, with the round when there are several. */
function roundLabel(name: string, round: number, rounds: number): string {
  return rounds > 1 ? `${name} (round ${round + 1}/${rounds})` : name;
}

const isLoad = (figure: SmallFigure | undefined): figure is LoadResult =>
  figure !== null && figure !== undefined && "rps" in figure;

function ratio(a: number | null | undefined, b: number | null | undefined, digits = 3): number | null {
  return typeof a === "number" && typeof b === "number" && b > 0 ? round(a / b, digits) : null;
}

async function main(): Promise<Record<string, unknown>> {
  const options = loadOptions(process.argv.slice(2));
  const warnings: string[] = [];
  const load1m = round(loadavg()[0] ?? 0, 2);
  const cpuCount = availableParallelism();
  if (load1m > cpuCount * 0.5) {
    warnings.push(`1-minute load average was ${load1m} on ${cpuCount} CPUs at start: figures are noisy`);
  }
  const machine: Record<string, unknown> = {
    cpus: cpuCount,
    cpu_model: cpus()[0]?.model?.trim() ?? "unknown",
    node: process.version,
    load_avg_1m_at_start: load1m,
  };
  const settings = {
    quick: options.quick,
    duration_s: options.durationS,
    warmup_s: options.warmupS,
    rounds: options.rounds,
    connections: options.connections,
    threads: options.threads,
    stream_mib: round(options.streamBytes / 1024 ** 2, 1),
    stream_rounds: options.streamRounds,
  };
  log(`settings ${JSON.stringify(settings)}`);

  let wrkError: string | undefined;
  try {
    machine.wrk = await ensureWrk();
  } catch (error) {
    wrkError = `wrk unavailable: ${message(error)}`;
  }

  const engine = await startServer("engine", "engine.ts", []);
  const startNodeProxy = () => startServer("node-proxy", "node-proxy.ts", [String(engine.port)]);
  let nodeProxy = await startNodeProxy();
  let nginxSkipped: string | undefined;
  if (!options.nginx) {
    nginxSkipped = "disabled (--no-nginx or BENCH_NGINX=0)";
  } else {
    try {
      nginx = await startNginx(engine.port);
      machine.nginx = nginx.version;
    } catch (error) {
      nginxSkipped = message(error);
      log(`nginx skipped: ${nginxSkipped}`);
    }
  }
  let picasso: Picasso | undefined;
  let picassoError: string | undefined;
  try {
    picasso = await startPicasso({ enginePort: engine.port, mysqlUri: options.mysqlUri });
  } catch (error) {
    if (!(error instanceof PicassoError)) throw error;
    picassoError = error.message;
    log(`picasso unavailable: ${picassoError}`);
  }

  const local = (port: number) => `http://127.0.0.1:${port}`;
  type Target = { url: string; serverPid: number; headers?: Record<string, string> };
  const currentSmallTargets = (): Record<string, Target | Skipped | null> => ({
    direct: { url: `${local(engine.port)}/r/bench/hello`, serverPid: engine.child.pid },
    node_proxy: { url: `${local(nodeProxy.port)}/r/bench/hello`, serverPid: nodeProxy.child.pid },
    nginx: nginx
      ? { url: `${local(nginx.port)}/r/bench/hello`, serverPid: nginx.pid }
      : { skipped: nginxSkipped ?? "unavailable" },
    picasso_public: picasso
      ? { url: `${picasso.baseUrl}/r/${picasso.appName}/hello`, serverPid: picasso.child.pid }
      : null,
    picasso_private: picasso
      ? {
          url: `${picasso.baseUrl}/v1/r/${picasso.projectId}/${picasso.appName}/hello`,
          serverPid: picasso.child.pid,
          headers: { "X-Auth-Token": picasso.token },
        }
      : null,
  });
  const smallTargets = currentSmallTargets();

  const small: Record<string, SmallFigure> = {};
  const measured = new Map<string, { target: Target; rounds: LoadResult[] }>();
  for (const [name, target] of Object.entries(smallTargets)) {
    if (target === null || "skipped" in target) small[name] = target;
    else if (wrkError) small[name] = { error: wrkError };
    else measured.set(name, { target, rounds: [] });
  }
  for (let round = 0; round < options.rounds; round++) {
    if (round > 0) {
      checkInterrupted();
      // Each round measures new proxy processes (bench/README.md: "Fresh processes").
      const previous = nodeProxy.child;
      nodeProxy = await startNodeProxy();
      await stop(previous);
      if (picasso && (!small.picasso_public || !small.picasso_private)) {
        try {
          picasso = await restartPicasso(picasso);
        } catch (error) {
          if (!(error instanceof PicassoError)) throw error;
          small.picasso_public ??= { error: `restart: ${error.message}` };
          small.picasso_private ??= { error: `restart: ${error.message}` };
          log(`picasso restart failed: ${error.message}`);
        }
      }
      const targets = currentSmallTargets();
      for (const [name, entry] of measured) {
        const target = targets[name];
        if (target && !("skipped" in target)) entry.target = target;
      }
    }
    for (const [name, { target, rounds }] of orderOfRound([...measured], round)) {
      if (small[name]) continue; // failed in an earlier round
      checkInterrupted();
      try {
        await check(target.url, target.headers);
        const label = roundLabel(name, round, options.rounds);
        const result = await runLoad(label, target.url, options, {
          serverPid: target.serverPid,
          ...(target.headers ? { headers: target.headers } : {}),
        });
        rounds.push(result);
      } catch (error) {
        checkInterrupted();
        small[name] = { error: message(error) };
        log(`${name}: ${message(error)}`);
      }
    }
  }
  for (const [name, { rounds }] of measured) small[name] ??= combineRounds(rounds);
  // Key order of the output follows the target list, whatever order the results came in.
  const smallInOrder = Object.fromEntries(
    Object.keys(smallTargets).map((name) => [name, small[name] ?? null]),
  );
  for (const [name, figure] of Object.entries(small)) {
    if (isLoad(figure) && figure.errors > 0) {
      warnings.push(`${name}: ${figure.errors} of ${figure.requests} requests failed`);
    }
  }

  const streamTargets: Record<string, string | null> = {
    direct: local(engine.port),
    node_proxy: local(nodeProxy.port),
    nginx: nginx ? local(nginx.port) : null,
    picasso: picasso ? `${picasso.baseUrl}/r/${picasso.appName}` : null,
  };
  const uploads = new Map<string, number[]>();
  const downloads = new Map<string, number[]>();
  const streamErrors: Record<string, string> = {};
  // Baseline just before the streaming tests; Picasso idles while the other targets stream.
  let sampler: ReturnType<typeof sampleRss> | undefined;
  try {
    sampler = picasso ? sampleRss(picasso.child.pid) : undefined;
  } catch (error) {
    streamErrors.picasso = `cannot read Picasso's memory: ${message(error)}`;
  }
  for (let round = 0; round < options.streamRounds; round++) {
    for (const [name, base] of orderOfRound(Object.entries(streamTargets), round)) {
      if (base === null || streamErrors[name]) continue;
      checkInterrupted();
      const appBase = name === "picasso" ? base : `${base}/r/bench`;
      const label = roundLabel(name, round, options.streamRounds);
      try {
        const up = await transfer(label, "upload", `${appBase}/upload`, options.streamBytes);
        const down = await transfer(
          label,
          "download",
          `${appBase}/download?bytes=${options.streamBytes}`,
          options.streamBytes,
        );
        uploads.set(name, [...(uploads.get(name) ?? []), up]);
        downloads.set(name, [...(downloads.get(name) ?? []), down]);
      } catch (error) {
        checkInterrupted();
        streamErrors[name] = message(error);
        log(message(error));
      }
    }
  }
  const rss = sampler?.stop();
  const rssBefore = rss?.baselineMib ?? null;
  const rssPeak = rss?.peakMib ?? null;
  const rssGrowth = rssBefore !== null && rssPeak !== null ? round(rssPeak - rssBefore, 1) : null;
  const streamFigures = (runs: Map<string, number[]>) =>
    Object.fromEntries(
      Object.keys(streamTargets).map((name): [string, StreamFigure] => {
        const values = runs.get(name);
        return [name, values && !streamErrors[name] ? round(median(values), 1) : null];
      }),
    );
  const upload = streamFigures(uploads);
  const download = streamFigures(downloads);
  const streamRounds =
    options.streamRounds > 1
      ? {
          upload_mb_s_rounds: Object.fromEntries(uploads),
          download_mb_s_rounds: Object.fromEntries(downloads),
        }
      : {};

  const publicFigure = small.picasso_public;
  const privateFigure = small.picasso_private;
  const nodeFigure = small.node_proxy;
  const nginxFigure = small.nginx;
  const nodeRps = isLoad(nodeFigure) ? nodeFigure.rps : null;
  const result: Record<string, unknown> = {
    commit: commit(),
    machine,
    settings,
    small: smallInOrder,
    ratios: {
      public_vs_node_proxy_rps: ratio(isLoad(publicFigure) ? publicFigure.rps : null, nodeRps),
      private_vs_node_proxy_rps: ratio(isLoad(privateFigure) ? privateFigure.rps : null, nodeRps),
      public_vs_nginx_rps: ratio(
        isLoad(publicFigure) ? publicFigure.rps : null,
        isLoad(nginxFigure) ? nginxFigure.rps : null,
      ),
      public_p99_minus_node_proxy_ms:
        isLoad(publicFigure) && isLoad(nodeFigure) ? round(publicFigure.p99_ms - nodeFigure.p99_ms, 3) : null,
      public_vs_node_proxy_cpu_per_req: ratio(
        isLoad(publicFigure) ? publicFigure.cpu_us_per_req : null,
        isLoad(nodeFigure) ? nodeFigure.cpu_us_per_req : null,
      ),
    },
    stream: {
      upload_mb_s: upload,
      download_mb_s: download,
      picasso_vs_node_proxy: {
        upload: ratio(upload.picasso, upload.node_proxy),
        download: ratio(download.picasso, download.node_proxy),
      },
      picasso_rss_before_mib: rssBefore,
      picasso_peak_rss_mib: rssPeak,
      picasso_peak_rss_growth_mib: rssGrowth,
      ...streamRounds,
      ...(Object.keys(streamErrors).length > 0 ? { errors: streamErrors } : {}),
    },
  };
  if (picassoError) result.picasso_error = picassoError;
  if (warnings.length > 0) result.warnings = warnings;
  return result;
}

let exitCode = 0;
try {
  const result = await main();
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (error) {
  if (interrupted) {
    await cleanup();
    process.exit(130);
  }
  log(`failed: ${message(error)}`);
  process.stdout.write(`${JSON.stringify({ error: message(error) })}\n`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
