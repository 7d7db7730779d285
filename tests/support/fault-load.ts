/**
 * Load for fault tests: clients send requests in a loop while the test breaks a dependency, and
 * each answer is kept with the phase it started and ended in, so the test can say what every
 * phase must answer.
 */

/** What one request got; `status` 0 means no answer within the bound, or a broken connection. */
export type Answer<Op extends string = string, Phase extends string = string> = {
  op: Op;
  status: number;
  body: unknown;
  headers: Headers | null;
  started: Phase;
  ended: Phase;
  ms: number;
  error?: string;
  /** What the request was about (e.g. the app it created), when the test needs to look it up. */
  subject?: string;
};

export type CallOptions = {
  body?: unknown;
  token?: string;
  headers?: Record<string, string>;
};

/** The current phase, shared by the clients and the test that moves it on. */
export class Phases<Phase extends string> {
  constructor(public current: Phase) {}
  set(next: Phase) {
    this.current = next;
  }
}

/**
 * A request function bound to one Picasso: every request ends within `boundMs` (a hang shows as
 * status 0 with the error `no answer within ...`), JSON bodies are parsed.
 */
export function caller<Op extends string, Phase extends string>(
  base: string,
  phases: Phases<Phase>,
  boundMs: number,
) {
  return async function call(
    op: Op,
    method: string,
    path: string,
    options: CallOptions = {},
  ): Promise<Answer<Op, Phase>> {
    const started = phases.current;
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers["X-Auth-Token"] = options.token;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const begin = performance.now();
    try {
      const response = await fetch(`${base}${path}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: AbortSignal.timeout(boundMs),
      });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // A function's plain-text answer.
      }
      return {
        op,
        status: response.status,
        body,
        headers: response.headers,
        started,
        ended: phases.current,
        ms: performance.now() - begin,
      };
    } catch (error) {
      const timedOut = (error as Error).name === "TimeoutError";
      return {
        op,
        status: 0,
        body: null,
        headers: null,
        started,
        ended: phases.current,
        ms: performance.now() - begin,
        error: timedOut ? `no answer within ${boundMs} ms` : String((error as Error).cause ?? error),
      };
    }
  };
}

/** `{"op status": count}`, for the summary line. */
export function tally(answers: Answer[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const answer of answers) {
    const key = `${answer.op} ${answer.status}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** The API's error shape. */
export function isJsonError(body: unknown): boolean {
  const error = (body as { error?: { message?: unknown; code?: unknown } } | null)?.error;
  return typeof error?.message === "string" && typeof error.code === "string";
}

/** Runs `clients` loops of `step` until `stop()`; resolves once every loop has finished. */
export function runClients<T>(clients: number, step: (client: number, iteration: number) => Promise<T[]>) {
  let running = true;
  const results: T[] = [];
  const loops = Array.from({ length: clients }, async (_, client) => {
    for (let iteration = 0; running; iteration++) results.push(...(await step(client, iteration)));
  });
  return {
    results,
    async stop() {
      running = false;
      await Promise.all(loops);
      return results;
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns true or `timeoutMs` passes (then throws with `what`). */
export async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * Fault tests load one project far beyond the default quotas and rate limits, which they are not
 * about: `serve`'s environment without them.
 */
export const withoutLimits = {
  PICASSO_QUOTA_APPS: "-1",
  PICASSO_QUOTA_ROUTES_PER_APP: "-1",
  PICASSO_QUOTA_CONCURRENT_INVOCATIONS: "-1",
  PICASSO_RATE_LIMIT_PUBLIC: "0",
  PICASSO_RATE_LIMIT_PRIVATE: "0",
} as const;
