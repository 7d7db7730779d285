/**
 * nginx as the reference of a C proxy: one worker, upstream keep-alive, nothing buffered, no body
 * limit, no access log. Its files live in a temporary prefix removed at the end.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Child, freePort, output, start, stop, waitForHttp } from "./children.ts";
import { ensureInstalled } from "./debian.ts";

const nginxBinary = "/usr/sbin/nginx";

export type Nginx = { port: number; pid: number; version: string; stop: () => Promise<void> };

export function nginxConfig(prefix: string, listenPort: number, enginePort: number): string {
  return `daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  upstream engine {
    server 127.0.0.1:${enginePort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${listenPort};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://engine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_buffering off;
      client_max_body_size 0;
    }
  }
}
`;
}

export async function startNginx(enginePort: number): Promise<Nginx> {
  await ensureInstalled(nginxBinary, "nginx-light");
  const version = await nginxVersion();
  const prefix = mkdtempSync(join(tmpdir(), "bench-nginx-"));
  // Workers drop to an unprivileged user when started as root; they must reach the prefix.
  chmodSync(prefix, 0o755);
  const port = await freePort();
  const config = join(prefix, "nginx.conf");
  writeFileSync(config, nginxConfig(prefix, port, enginePort));
  let child: Child | undefined;
  const cleanup = async () => {
    if (child) await stop(child);
    rmSync(prefix, { recursive: true, force: true });
  };
  try {
    child = start({
      name: "nginx",
      command: nginxBinary,
      args: ["-p", prefix, "-c", config, "-e", join(prefix, "error.log")],
    });
    await waitForHttp(`http://127.0.0.1:${port}/version`, 10_000, child);
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { port, pid: child.pid, version, stop: cleanup };
}

async function nginxVersion(): Promise<string> {
  const child = start({ name: "nginx -v", command: nginxBinary, args: ["-v"], captureStdout: true });
  let text = "";
  child.process.stderr?.on("data", (chunk: Buffer | string) => {
    text += String(chunk);
  });
  await output(child, 5000);
  return /nginx\/(\S+)/.exec(text)?.[1] ?? "unknown";
}
