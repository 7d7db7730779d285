import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { exampleFunctionsDir, loadDevConfig } from "../../app/config.ts";
import { devBanner } from "../../bin/commands/dev.ts";
import { freePort, runCli, waitForHttp } from "../support/cli.ts";
import { scratchDatabase } from "../support/db.ts";
import { eventually } from "../support/processes.ts";

const run = promisify(execFile);
const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const drop of drops) await drop();
});

describe("picasso-api dev: configuration", () => {
  it("defaults to loopback, noauth, the shipped examples and a picasso_dev database", () => {
    const config = loadDevConfig({}, {});
    expect(config.host).toBe("127.0.0.1");
    expect(config.port).toBe(10001);
    expect(config["db-uri"]).toBe("mysql://root@127.0.0.1:3306/picasso_dev");
    expect(config["functions-url"]).toBe(`local:${exampleFunctionsDir}`);
    expect(config["auth-strategy"]).toBe("noauth");
  });

  it("reads PICASSO_DB but none of serve's other variables", () => {
    const config = loadDevConfig(
      {},
      {
        PICASSO_DB: "mysql://root@127.0.0.1:3306/elsewhere",
        PICASSO_HOST: "0.0.0.0",
        PICASSO_PORT: "9999",
        FUNCTIONS_URL: "http://engine.example:8080/v1",
        PICASSO_AUTH_STRATEGY: "keystone",
      },
    );
    expect(config["db-uri"]).toBe("mysql://root@127.0.0.1:3306/elsewhere");
    expect(config.host).toBe("127.0.0.1");
    expect(config.port).toBe(10001);
    expect(config["functions-url"]).toBe(`local:${exampleFunctionsDir}`);
    expect(config["auth-strategy"]).toBe("noauth");
  });

  it("refuses a non-loopback host unless noauth is explicitly forced", () => {
    expect(() => loadDevConfig({ host: "0.0.0.0" }, {})).toThrow(/--allow-insecure-noauth/);
    expect(loadDevConfig({ host: "0.0.0.0", "allow-insecure-noauth": true }, {}).host).toBe("0.0.0.0");
  });
});

const curlLines = (text: string) =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.startsWith("curl "))
    .map((line) => line.replace(/\s+#.*$/, ""));

describe("picasso-api dev: the README", () => {
  it("shows in its quick start exactly the commands dev prints", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const quickStart = readme.slice(
      readme.indexOf("## Quick start"),
      readme.indexOf("\n## ", readme.indexOf("## Quick start") + 1),
    );
    expect(quickStart).toContain("npm ci && npx picasso-api dev");
    const printed = curlLines(devBanner({ host: "127.0.0.1", port: 10001, config: loadDevConfig({}, {}) }));
    expect(printed).toHaveLength(4);
    expect(curlLines(quickStart)).toEqual(printed);
  });
});

describe("picasso-api dev, as a newcomer runs it", () => {
  it("creates and migrates its database, and the commands it prints work as printed", async () => {
    const scratch = await scratchDatabase();
    // dev must create the database itself.
    await scratch.drop();
    drops.push(scratch.drop);
    const port = await freePort();
    // From another directory: the examples are found from the package, not the working directory.
    const dev = runCli(["dev", "--db-uri", scratch.uri, "--port", String(port)], {}, { cwd: tmpdir() });
    const base = `http://127.0.0.1:${port}`;
    await eventually(() => dev.output().includes("Stop with Ctrl-C"), "dev printed its banner", 30_000);
    await waitForHttp(`${base}/`);
    const output = dev.output();

    expect(output).toContain("AUTHENTICATION IS DISABLED");
    expect(output).toContain(`API explorer: ${base}/api`);
    expect(output).toMatch(/Functions: +aodh-alarm, echo, hello/);
    expect((await fetch(`${base}/api`)).status).toBe(200);

    const commands = curlLines(output);
    expect(commands).toHaveLength(4);
    const results: string[] = [];
    for (const command of commands) {
      const { stdout } = await run("sh", ["-c", `${command} -w '\\n%{http_code}'`]);
      results.push(stdout);
    }
    const [createdApp, createdRoute, publicCall, privateCall] = results.map((result) => {
      const cut = result.lastIndexOf("\n");
      return { body: result.slice(0, cut), status: Number(result.slice(cut + 1)) };
    });
    expect(createdApp?.status).toBe(200);
    expect(JSON.parse(createdApp?.body ?? "{}")).toMatchObject({
      app: { name: "hello-demo", project_id: "demo" },
    });
    expect(createdRoute?.status).toBe(200);
    expect(JSON.parse(createdRoute?.body ?? "{}")).toMatchObject({
      route: { path: "/hello", image: "hello", is_public: true },
    });
    expect(publicCall).toEqual({ body: "Hello Ada!\n", status: 200 });
    expect(privateCall).toEqual({ body: "Hello World!\n", status: 200 });

    dev.child.kill("SIGTERM");
    expect(await dev.exited).toEqual({ code: 0, signal: null });
  });

  it("refuses to bind a non-loopback address without --allow-insecure-noauth", async () => {
    const dev = runCli(["dev", "--host", "0.0.0.0", "--port", "0"]);
    expect((await dev.exited).code).toBe(2);
    expect(dev.output()).toMatch(/noauth.*--allow-insecure-noauth/);
  });

  it("says how to get a database when MySQL cannot be reached", async () => {
    const port = await freePort();
    const dev = runCli(["dev", "--db-uri", `mysql://root@127.0.0.1:${port}/picasso_dev`, "--port", "0"]);
    expect((await dev.exited).code).not.toBe(0);
    expect(dev.output()).toContain("scripts/mariadb.sh");
  });
});
