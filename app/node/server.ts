import { randomUUID } from "node:crypto";
import { createServer, type Server, STATUS_CODES } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { getRequestListener } from "@hono/node-server";
import { type ErrorCode, errorBody, errorStatuses } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { requestIdHeader } from "../middleware/request-id/index.ts";
import type { Lifecycle } from "../types.ts";
import type { PreRoutedListener } from "./invocation-listener.ts";

export type RunningServer = {
  server: Server;
  port: number;
  /**
   * Marks the process draining (/healthcheck answers 503), keeps serving for `delayMs` so load
   * balancers take it out, stops accepting, waits for in-flight requests up to `graceMs`, then
   * cuts what is left. Aborting `endDelay` ends the delay early (a second signal).
   */
  shutdown: (graceMs: number, options?: ShutdownOptions) => Promise<void>;
};

export type ShutdownOptions = { delayMs?: number; endDelay?: AbortSignal };

/** The HTTP server's own limits; requests failing them never reach the app. */
export type ServerLimits = {
  /** Time a client has to send the request headers; then 408 (Node's default: 60 s). */
  headersTimeoutMs?: number;
  /** Idle time after which a keep-alive connection is closed (Node's default: 5 s). */
  keepAliveTimeoutMs?: number;
  /** Largest header section in bytes; then 431 (Node's default: 16 KiB). */
  maxHeaderSize?: number;
};

export type ListenOptions = {
  fetch: (request: Request, env: unknown) => Response | Promise<Response>;
  /** Answers some requests before the app sees them (`preRoutedInvocations`); the rest go to `fetch`. */
  preRouted?: PreRoutedListener | null;
  host: string;
  port: number;
  logger: Logger;
  lifecycle: Lifecycle;
  limits?: ServerLimits;
};

export function listen(options: ListenOptions): Promise<RunningServer> {
  const limits = options.limits ?? {};
  return new Promise((resolve, reject) => {
    const app = getRequestListener(options.fetch, { hostname: options.host });
    const preRouted = options.preRouted;
    const server = createServer(
      {
        // Node's requestTimeout (default 5 min) bounds receiving the whole request body, which
        // would cut long streamed uploads to functions; the invocation deadline bounds those.
        requestTimeout: 0,
        ...(limits.headersTimeoutMs !== undefined && { headersTimeout: limits.headersTimeoutMs }),
        ...(limits.keepAliveTimeoutMs !== undefined && { keepAliveTimeout: limits.keepAliveTimeoutMs }),
        ...(limits.maxHeaderSize !== undefined && { maxHeaderSize: limits.maxHeaderSize }),
        // How often headersTimeout is enforced (Node's default 30 s would stretch it by as much).
        connectionsCheckingInterval: 1000,
      },
      preRouted
        ? function routeRequest(incoming, outgoing) {
            if (!preRouted(incoming, outgoing)) void app(incoming, outgoing);
          }
        : app,
    );
    if (limits.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    const sockets = new Set<Socket>();
    const forget = function forget(this: Socket) {
      sockets.delete(this);
    };
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.once("close", forget);
    });
    server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) =>
      answerClientError(error, socket, options.logger),
    );
    server.once("error", reject);
    server.once("listening", () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        server,
        port,
        shutdown: (graceMs, shutdownOptions = {}) =>
          shutdown(server, sockets, options, graceMs, shutdownOptions),
      });
    });
    server.listen(options.port, options.host);
  });
}

const clientErrors: Record<string, [ErrorCode, string]> = {
  HPE_HEADER_OVERFLOW: ["request_header_fields_too_large", "Request header fields too large"],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: ["payload_too_large", "Chunk extensions too large"],
  ERR_HTTP_REQUEST_TIMEOUT: ["request_timeout", "Request headers not received in time"],
};

/**
 * Requests Node's parser rejects (too large headers, malformed, too slow) get the API's JSON
 * error shape and a request id, like every other answer, instead of Node's bare status line.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex, logger: Logger): void {
  const response = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (error.code === "ECONNRESET" || !socket.writable || response?.headersSent) {
    socket.destroy();
    return;
  }
  const [code, message] = clientErrors[error.code ?? ""] ?? ["bad_request", "Malformed HTTP request"];
  const status = errorStatuses[code];
  const id = `req-${randomUUID()}`;
  const body = JSON.stringify(errorBody(code, message));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      "Content-Type: application/json\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `${requestIdHeader}: ${id}\r\n` +
      "Connection: close\r\n\r\n" +
      body,
  );
  logger.info("rejected malformed request", { request_id: id, status, reason: error.code ?? "parse" });
}

async function shutdown(
  server: Server,
  sockets: ReadonlySet<Socket>,
  options: ListenOptions,
  graceMs: number,
  { delayMs = 0, endDelay }: ShutdownOptions,
) {
  options.lifecycle.draining = true;
  if (delayMs > 0 && !endDelay?.aborted) {
    options.logger.info("draining: /healthcheck answers 503, still serving", { delay_ms: delayMs });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delayMs);
      endDelay?.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive sockets with no request in flight would hold close() open until they time out;
  // sockets that finish their last request become idle later, so keep sweeping.
  closeIdleConnections(server, sockets);
  const sweeper = setInterval(() => closeIdleConnections(server, sockets), 100);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), graceMs);
  });
  const outcome = await Promise.race([closed.then(() => "closed" as const), deadline]);
  clearTimeout(timer);
  clearInterval(sweeper);
  if (outcome === "timeout") {
    options.logger.warn("shutdown grace period over, closing remaining connections", { grace_ms: graceMs });
    server.closeAllConnections();
    await closed;
  }
}

/**
 * Node 20 counts a connection that has not sent a byte yet as busy (its header timeout runs from
 * the connect), so `closeIdleConnections()` leaves it open and it holds `close()` for the whole
 * grace period. Clients open such connections ahead of need: browsers speculatively, balancers
 * for their pools, and Node's fetch right after aborting a request. Nothing was asked on them.
 */
function closeIdleConnections(server: Server, sockets: ReadonlySet<Socket>): void {
  server.closeIdleConnections();
  for (const socket of sockets) {
    if (socket.bytesRead === 0) socket.destroy();
  }
}
