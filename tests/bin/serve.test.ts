import { afterAll, describe, expect, it } from "vitest";
import { freePort, runCli, waitForHttp } from "../support/cli.ts";
import { scratchDatabase, testDbUri } from "../support/db.ts";

const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const drop of drops) await drop();
});

describe("picasso-api", () => {
  it("lists every option in --help", async () => {
    const cli = runCli(["--help"]);
    expect((await cli.exited).code).toBe(0);
    for (const option of [
      "--host",
      "--port",
      "--db-uri",
      "--keystone-endpoint",
      "--auth-strategy",
      "--allow-insecure-noauth",
      "--keystone-username",
      "--keystone-app-credential-id",
      "--token-cache-ttl",
      "--token-cache-size",
      "--reader-role",
      "--member-role",
      "--admin-role",
      "--functions-url",
      "--log-level",
      "--log-file",
      "migrate",
      "serve",
    ]) {
      expect(cli.output()).toContain(option);
    }
  });

  it("exits non-zero with one line naming a bad option", async () => {
    const cli = runCli(["serve", "--port", "nope"], {
      PICASSO_DB: testDbUri(),
      KEYSTONE_ENDPOINT: "http://127.0.0.1:5000/v3",
    });
    expect((await cli.exited).code).toBe(2);
    expect(cli.output().trim()).toBe(
      "picasso-api: invalid option --port (PICASSO_PORT): must be a port number",
    );
  });

  it("refuses to serve a database without the schema, saying to migrate", async () => {
    const scratch = await scratchDatabase();
    drops.push(scratch.drop);
    const cli = runCli(["serve", "--db-uri", scratch.uri, "--port", "0"], {
      KEYSTONE_ENDPOINT: "http://127.0.0.1:5000/v3",
    });
    expect((await cli.exited).code).not.toBe(0);
    expect(cli.output()).toContain("picasso-api migrate");
  });

  it("refuses to start without a Keystone endpoint, naming the option", async () => {
    const cli = runCli(["serve"], { PICASSO_DB: testDbUri() });
    expect((await cli.exited).code).toBe(2);
    expect(cli.output().trim()).toBe(
      "picasso-api: invalid option --keystone-endpoint (KEYSTONE_ENDPOINT): is required with --auth-strategy keystone",
    );
  });

  it("refuses noauth on a non-loopback host", async () => {
    const cli = runCli(["serve", "--auth-strategy", "noauth", "--host", "0.0.0.0"], {
      PICASSO_DB: testDbUri(),
    });
    expect((await cli.exited).code).toBe(2);
    expect(cli.output()).toContain("--allow-insecure-noauth");
    expect(cli.output()).not.toContain("listening");
  });

  it("serves with noauth on loopback, warning loudly", async () => {
    const port = await freePort();
    const server = runCli(["serve", "--port", String(port)], {
      PICASSO_DB: testDbUri(),
      PICASSO_HOST: "127.0.0.1",
      PICASSO_AUTH_STRATEGY: "noauth",
    });
    await waitForHttp(`http://127.0.0.1:${port}/`);
    server.child.kill("SIGTERM");
    expect((await server.exited).code).toBe(0);
    expect(server.output()).toMatch(/WARNING AUTHENTICATION IS DISABLED/);
  });

  it("migrates, serves over HTTP and exits 0 on SIGTERM", async () => {
    const scratch = await scratchDatabase();
    drops.push(scratch.drop);
    const pymysqlUri = scratch.uri.replace("mysql://", "mysql+pymysql://");
    const migrate = runCli(["migrate", "--db-uri", pymysqlUri]);
    expect((await migrate.exited).code).toBe(0);

    const port = await freePort();
    // The default command is serve, configured here from the environment only, with Keystone
    // down: the service must start anyway (requests needing a token then get 503).
    const server = runCli([], {
      PICASSO_DB: pymysqlUri,
      PICASSO_PORT: String(port),
      PICASSO_HOST: "127.0.0.1",
      KEYSTONE_ENDPOINT: `http://127.0.0.1:${await freePort()}/v3`,
    });
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/`);

    const document = await fetch(`${base}/api/openapi.json`);
    expect(document.status).toBe(200);
    expect(((await document.json()) as { openapi: string }).openapi).toBe("3.1.0");
    expect((await fetch(`${base}/api/swagger.json`)).status).toBe(200);
    const ui = await fetch(`${base}/api`);
    expect(await ui.text()).toContain("swagger-ui");
    const bundle = await fetch(`${base}/api/assets/swagger-ui-dist/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    const unknown = await fetch(`${base}/nope`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "not_found" } });

    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.output()).toMatch(/request .*method=GET path=\/api\/openapi.json status=200/);
    expect(server.output()).toContain("Keystone not reachable yet");
  });
});
