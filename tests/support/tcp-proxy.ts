import { createServer, Socket } from "node:net";

/**
 * A TCP proxy in front of a real server (Keystone, Redis), so a test can take "the network" away from
 * one client without stopping the server other test files share.
 * - `pipe`: forwards bytes both ways.
 * - `blackhole`: accepts connections and never answers (a hung Keystone).
 * - `http500`: answers every request with a bare 500 (a broken Keystone behind a load balancer).
 * - `reset`: accepts and drops every connection at once (a crashing Keystone).
 */
export type ProxyMode = "pipe" | "blackhole" | "http500" | "reset";

export type TcpProxy = {
  port: number;
  url: string;
  mode: ProxyMode;
  /** Closes the listener and every open connection: later connects are refused. */
  stop(): Promise<void>;
};

/** `port` 0 picks a free one; give a stopped proxy's port to bring "the network" back. */
export async function startTcpProxy(
  target: { host: string; port: number },
  mode: ProxyMode = "pipe",
  port = 0,
): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    if (proxy.mode === "blackhole") return;
    if (proxy.mode === "reset") {
      client.resetAndDestroy();
      return;
    }
    if (proxy.mode === "http500") {
      client.once("data", () => {
        client.end("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
      });
      return;
    }
    const upstream = new Socket();
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.connect(target.port, target.host, () => {
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on("end", () => client.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const bound = typeof address === "object" && address ? address.port : 0;
  const proxy: TcpProxy = {
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    mode,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
