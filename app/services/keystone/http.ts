import { Agent, fetch as undiciFetch } from "undici";

/** What Picasso needs of a response: the Fetch API's, so a test can wrap `fetch` to count calls. */
export type KeystoneResponse = {
  status: number;
  headers: { get(name: string): string | null };
  json(): Promise<unknown>;
  text(): Promise<string>;
};

export type KeystoneRequest = {
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
};

export type KeystoneFetch = (url: string, init: KeystoneRequest) => Promise<KeystoneResponse>;

/** Keystone did not give a usable answer: unreachable, too slow, 5xx, or a body that is no token. */
export class KeystoneUnavailableError extends Error {
  override name = "KeystoneUnavailableError";
}

/** How one request to Keystone went, for metrics (see picasso_keystone_requests_total). */
export type KeystoneOutcome = "success" | "rejected" | "error" | "timeout";

function outcomeOf(status: number): KeystoneOutcome {
  if (status >= 200 && status < 300) return "success";
  // Keystone's ways of saying no: unknown, malformed, expired or revoked token, or not allowed.
  if (status === 400 || status === 401 || status === 403 || status === 404) return "rejected";
  return "error";
}

export type KeystoneHttp = {
  send(url: string, init: Omit<KeystoneRequest, "signal">, signal?: AbortSignal): Promise<KeystoneResponse>;
  close(): Promise<void>;
};

/**
 * One connection pool to Keystone with a connect timeout, and a total deadline per request that
 * covers reading the body too. `fetchImpl` replaces the pool (tests count calls through it).
 */
export function createKeystoneHttp(options: {
  timeoutMs: number;
  connectTimeoutMs: number;
  fetchImpl?: KeystoneFetch;
  onOutcome?: (outcome: KeystoneOutcome) => void;
}): KeystoneHttp {
  const agent = options.fetchImpl
    ? undefined
    : new Agent({ connect: { timeout: options.connectTimeoutMs }, keepAliveTimeout: 30_000 });
  const fetchImpl: KeystoneFetch =
    options.fetchImpl ?? ((url, init) => undiciFetch(url, { ...init, dispatcher: agent }));
  return {
    async send(url, init, signal) {
      const deadline = AbortSignal.timeout(options.timeoutMs);
      try {
        const response = await fetchImpl(url, {
          ...init,
          signal: signal ? AbortSignal.any([deadline, signal]) : deadline,
        });
        options.onOutcome?.(outcomeOf(response.status));
        return response;
      } catch (error) {
        options.onOutcome?.(deadline.aborted ? "timeout" : "error");
        throw new KeystoneUnavailableError(describeNetworkError(error), { cause: error });
      }
    },
    async close() {
      await agent?.close();
    },
  };
}

/** Reads a JSON body; a body that is not JSON, or arrives too late, means Keystone misbehaved. */
export async function readJson(response: KeystoneResponse): Promise<unknown> {
  try {
    return await response.json();
  } catch (error) {
    throw new KeystoneUnavailableError(`unreadable answer (${describeNetworkError(error)})`, {
      cause: error,
    });
  }
}

/** Drains a body nobody needs, so its connection can be reused. */
export async function discard(response: KeystoneResponse): Promise<void> {
  await response.text().catch(() => {});
}

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === "TimeoutError") return "timed out";
  const cause = (error as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : undefined;
  return detail ? `${error.message}: ${detail}` : error.message;
}
