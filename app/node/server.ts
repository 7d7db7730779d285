import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { Logger } from "../lib/logger.ts";
import type { Lifecycle } from "../types.ts";

export type RunningServer = {
  server: Server;
  port: number;
  /** Stops accepting, waits for in-flight requests up to `graceMs`, then cuts what is left. */
  shutdown: (graceMs: number) => Promise<void>;
};

export type ListenOptions = {
  fetch: (request: Request, env: unknown) => Response | Promise<Response>;
  host: string;
  port: number;
  logger: Logger;
  lifecycle: Lifecycle;
};

export function listen(options: ListenOptions): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: options.fetch, hostname: options.host, port: options.port }) as Server;
    server.once("error", reject);
    server.once("listening", () => {
      const port = (server.address() as AddressInfo).port;
      resolve({ server, port, shutdown: (graceMs) => shutdown(server, options, graceMs) });
    });
  });
}

async function shutdown(server: Server, options: ListenOptions, graceMs: number): Promise<void> {
  options.lifecycle.draining = true;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive sockets with no request in flight would hold close() open until they time out;
  // sockets that finish their last request become idle later, so keep sweeping.
  server.closeIdleConnections();
  const sweeper = setInterval(() => server.closeIdleConnections(), 100);
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
