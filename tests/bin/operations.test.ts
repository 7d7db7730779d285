import { describe, expect, it } from "vitest";
import { freePort, runCli, waitForHttp } from "../support/cli.ts";
import { testDbUri } from "../support/db.ts";

async function startServer(args: string[]) {
  const port = await freePort();
  const server = runCli(["serve", "--host", "127.0.0.1", "--port", String(port), ...args], {
    PICASSO_DB: testDbUri(),
    // Nothing listens there: these tests are about the process, not about tokens.
    KEYSTONE_ENDPOINT: `http://127.0.0.1:${await freePort()}/v3`,
  });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/healthcheck`);
  return { server, base };
}

describe("picasso-api serve, as an operator runs it", () => {
  it("lists the operations options in --help", async () => {
    const cli = runCli(["serve", "--help"]);
    expect((await cli.exited).code).toBe(0);
    for (const option of [
      "--shutdown-delay",
      "--header-timeout",
      "--keepalive-timeout",
      "--max-header-size",
      "--metrics",
      "--healthcheck-cache",
      "--healthcheck-timeout",
    ]) {
      expect(cli.output()).toContain(option);
    }
  });

  it("drains for --shutdown-delay after SIGTERM, serving all along, and a second signal ends the delay", async () => {
    const { server, base } = await startServer(["--shutdown-delay", "600"]);
    expect((await fetch(`${base}/healthcheck`)).status).toBe(200);

    server.child.kill("SIGTERM");
    const deadline = Date.now() + 10_000;
    let health = 200;
    while (health !== 503 && Date.now() < deadline) {
      health = (await fetch(`${base}/healthcheck`)).status;
    }
    expect(health).toBe(503);
    expect((await fetch(`${base}/`)).status).toBe(200);
    const detailed = (await (await fetch(`${base}/healthcheck?detailed=1`)).json()) as { status: string };
    expect(detailed.status).toBe("draining");

    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.output()).toContain("draining: /healthcheck answers 503, still serving");
  });

  it("serves /metrics with process, pool and HTTP metrics by default", async () => {
    const { server, base } = await startServer([]);
    await fetch(`${base}/api/openapi.json`);
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toMatch(/^picasso_db_pool_connections\{state="idle"\} \d+$/m);
    expect(text).toContain('picasso_build_info{version="');
    expect(text).toContain("process_resident_memory_bytes");
    expect(text).toContain(
      'picasso_http_requests_total{method="GET",route="/api/openapi.json",status_class="2xx"} 1',
    );
    server.child.kill("SIGTERM");
    expect((await server.exited).code).toBe(0);
  });

  it("does not serve /metrics with --metrics off", async () => {
    const { server, base } = await startServer(["--metrics", "off"]);
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    server.child.kill("SIGTERM");
    expect((await server.exited).code).toBe(0);
  });
});
