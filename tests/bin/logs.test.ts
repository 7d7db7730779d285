import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, runCli, waitForHttp } from "../support/cli.ts";
import { testDbUri } from "../support/db.ts";

const directory = await mkdtemp(join(tmpdir(), "picasso-logs-"));
const cleanups: (() => Promise<unknown>)[] = [() => rm(directory, { recursive: true, force: true })];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const readIfExists = async (path: string) => (existsSync(path) ? readFile(path, "utf8") : "");
const requestIdFor = () => `req-${crypto.randomUUID()}`;

describe("--log-file and SIGHUP", () => {
  it("reopens the log file on SIGHUP, so logrotate's rename starts a new file", async () => {
    const logFile = join(directory, "picasso.log");
    const rotated = join(directory, "picasso.log.1");
    const port = await freePort();
    const server = runCli([
      "serve",
      "--db-uri",
      testDbUri(),
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--log-file",
      logFile,
      "--keystone-endpoint",
      `http://127.0.0.1:${await freePort()}/v3`,
    ]);
    cleanups.push(async () => {
      if (server.child.exitCode === null) server.child.kill("SIGKILL");
    });
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/`);

    const before = requestIdFor();
    await fetch(`${base}/`, { headers: { "X-Openstack-Request-Id": before } });
    await waitFor("the first request in the log", async () => (await readIfExists(logFile)).includes(before));

    await rename(logFile, rotated);
    server.child.kill("SIGHUP");
    // The signal is handled asynchronously: keep sending until a request lands in the new file.
    let after = "";
    await waitFor("a request in the reopened file", async () => {
      after = requestIdFor();
      await fetch(`${base}/`, { headers: { "X-Openstack-Request-Id": after } });
      return (await readIfExists(logFile)).includes(after);
    });

    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
    const oldFile = await readFile(rotated, "utf8");
    const newFile = await readFile(logFile, "utf8");
    expect(oldFile).toContain("picasso-api listening");
    expect(oldFile).toContain(before);
    expect(newFile).not.toContain(before);
    expect(newFile).toContain(after);
    expect(newFile).toMatch(/INFO stopped\n$/);
    // SIGHUP neither stopped the server nor printed anything to stderr.
    expect(server.output()).toBe("");
  });
});

/** Sends raw headers (fetch would refuse some of these) and resolves with the status. */
function rawGet(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: "127.0.0.1", port, path, headers }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
    });
    request.on("error", reject);
    request.end();
  });
}

describe("secrets never reach the logs", () => {
  it("keeps tokens, passwords and the database password out of every log line of a full run", async () => {
    const secret = (name: string) => `${name}-${randomBytes(12).toString("hex")}`;
    const secrets = {
      dbPassword: secret("dbpw"),
      wrongDbPassword: secret("wrongdbpw"),
      keystonePassword: secret("kspw"),
      headerToken: secret("token"),
      subjectToken: secret("subject"),
      queryToken: secret("querytoken"),
      queryPassword: secret("querypw"),
      bodyPassword: secret("bodypw"),
      bearer: secret("bearer"),
      cookie: secret("cookie"),
      oversizedToken: secret("bigtoken"),
    };

    // A database user with a password, so the URI carries a real one.
    const user = `picasso_logs_${randomBytes(4).toString("hex")}`;
    const database = new URL(testDbUri()).pathname.slice(1);
    const admin = await mysql.createConnection({ uri: testDbUri() });
    await admin.query("CREATE USER ?@'%' IDENTIFIED BY ?", [user, secrets.dbPassword]);
    await admin.query(`GRANT ALL ON ${mysql.escapeId(database)}.* TO ?@'%'`, [user]);
    cleanups.push(async () => {
      await admin.query("DROP USER IF EXISTS ?@'%'", [user]);
      await admin.end();
    });
    const withPassword = (password: string) => {
      const url = new URL(testDbUri());
      url.username = user;
      url.password = password;
      return url.toString().replace("mysql://", "mysql+pymysql://");
    };

    const logFile = join(directory, "secrets.log");
    const outputs: string[] = [];

    // Startup failures: a wrong database password, and credentials in the Keystone URL.
    const wrongPassword = runCli(
      ["serve", "--db-uri", withPassword(secrets.wrongDbPassword), "--port", "0"],
      {
        PICASSO_LOG_LEVEL: "DEBUG",
        KEYSTONE_ENDPOINT: "http://127.0.0.1:5000/v3",
      },
    );
    expect((await wrongPassword.exited).code).not.toBe(0);
    expect(wrongPassword.output()).toContain("Access denied");
    outputs.push(wrongPassword.output());
    const credentialsInUrl = runCli([
      "serve",
      "--db-uri",
      withPassword(secrets.dbPassword),
      "--keystone-endpoint",
      `http://admin:${secrets.keystonePassword}@127.0.0.1:5000/v3`,
    ]);
    expect((await credentialsInUrl.exited).code).toBe(2);
    outputs.push(credentialsInUrl.output());

    const migrate = runCli(["migrate", "--db-uri", withPassword(secrets.dbPassword), "--log-level", "debug"]);
    expect((await migrate.exited).code).toBe(0);
    outputs.push(migrate.output());

    const port = await freePort();
    const server = runCli(
      [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--log-level",
        "debug",
        "--log-file",
        logFile,
        "--keystone-endpoint",
        "http://127.0.0.1:5000/v3",
        "--functions-url",
        `http://127.0.0.1:${await freePort()}/v1`,
      ],
      { PICASSO_DB: withPassword(secrets.dbPassword) },
    );
    cleanups.push(async () => {
      if (server.child.exitCode === null) server.child.kill("SIGKILL");
    });
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/healthcheck`);
    const project = randomBytes(16).toString("hex");

    const sent: Response[] = [];
    const send = async (path: string, init: RequestInit = {}) => {
      const response = await fetch(`${base}${path}`, init);
      await response.arrayBuffer();
      sent.push(response);
    };
    await send(`/v1/${project}/apps`, { headers: { "X-Auth-Token": secrets.headerToken } });
    await send(`/v1/${project}/apps`, {
      method: "POST",
      headers: { "X-Auth-Token": secrets.headerToken, "Content-Type": "application/json" },
      body: JSON.stringify({ app: { name: "logs", config: { password: secrets.bodyPassword } } }),
    });
    await send(`/v1/${project}/apps/logs/routes`, {
      headers: { "X-Auth-Token": secrets.headerToken, "X-Subject-Token": secrets.subjectToken },
    });
    await send(`/?token=${secrets.queryToken}&password=${secrets.queryPassword}`);
    await send(`/r/logs/hello?access_token=${secrets.queryToken}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${secrets.bearer}`, Cookie: `session=${secrets.cookie}` },
      body: `{"password":"${secrets.bodyPassword}"}`,
    });
    await send("/healthcheck?detailed=1");
    await send(`/nope?password=${secrets.queryPassword}`, {
      headers: { "X-Auth-Token": secrets.headerToken },
    });
    expect(
      await rawGet(port, "/", { "X-Auth-Token": `${secrets.oversizedToken}${"x".repeat(20_000)}` }),
    ).toBe(431);

    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
    outputs.push(server.output(), await readFile(logFile, "utf8"));
    const everything = outputs.join("\n");

    // The run did log: every request, at debug level too, and the rejected one.
    const logged = await readFile(logFile, "utf8");
    expect(logged).toContain(`path=/v1/${project}/apps `);
    expect(logged).toContain("path=/healthcheck ");
    expect(logged).toContain("DEBUG");
    expect(logged).toContain("rejected malformed request");
    expect(sent.length).toBe(7);
    for (const [name, value] of Object.entries(secrets)) {
      if (everything.includes(value)) throw new Error(`the ${name} secret appears in the logs`);
    }
  });
});
