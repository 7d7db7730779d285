// Keystone unreachable, hung or failing: the authenticator answers 503 for tokens it has not
// validated yet and keeps serving cached ones. The shared Keystone keeps running; each test puts
// its own TCP proxy in front of it and breaks that.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../../app/lib/logger.ts";
import {
  KeystoneAuthenticator,
  type KeystoneAuthenticatorOptions,
} from "../../../app/services/keystone/index.ts";
import { createMetrics } from "../../../app/services/metrics/index.ts";
import { freePort } from "../../support/cli.ts";
import { KeystoneAdmin, type ProjectWithUsers } from "../../support/keystone.ts";
import { counterValue, removeQuietly, testKeystoneTimeoutMs } from "../../support/keystone-calls.ts";
import { captureLogs } from "../../support/logs.ts";
import { type ProxyMode, startTcpProxy, type TcpProxy } from "../../support/tcp-proxy.ts";

let admin: KeystoneAdmin;
let cast: ProjectWithUsers;
const proxies: TcpProxy[] = [];
const authenticators: KeystoneAuthenticator[] = [];

async function proxy(mode: ProxyMode = "pipe") {
  const target = new URL(admin.url);
  const started = await startTcpProxy({ host: target.hostname, port: Number(target.port) }, mode);
  proxies.push(started);
  return started;
}

function through(url: string, options: Partial<KeystoneAuthenticatorOptions> = {}) {
  const keystone = new KeystoneAuthenticator({
    endpoint: `${url}/v3`,
    logger: silentLogger,
    timeoutMs: testKeystoneTimeoutMs,
    ...options,
  });
  authenticators.push(keystone);
  return keystone;
}

beforeAll(async () => {
  admin = await KeystoneAdmin.connect();
  cast = await admin.createProjectWithUsers();
});

afterAll(async () => {
  await Promise.all(authenticators.map((created) => created.close()));
  await Promise.all(proxies.map((started) => started.stop()));
  await removeQuietly(admin, { users: [cast.member.id, cast.reader.id], projects: [cast.project.id] });
});

describe("Keystone outage", () => {
  it("keeps cached tokens working and answers 503 for new ones once Keystone is gone", async () => {
    const pipe = await proxy();
    const logs = captureLogs();
    const keystone = through(pipe.url, { logger: logs.logger });
    expect((await keystone.authenticate(cast.member.token, undefined)).userId).toBe(cast.member.id);
    await pipe.stop();

    expect((await keystone.authenticate(cast.member.token, undefined)).userId).toBe(cast.member.id);
    await expect(keystone.authenticate(cast.reader.token, undefined)).rejects.toMatchObject({
      status: 503,
      code: "service_unavailable",
    });
    expect(logs.text()).toContain("Keystone unavailable");
    expect(logs.text()).not.toContain(cast.reader.token);
  });

  it("answers 503, never 401, when nothing listens on the endpoint", async () => {
    const keystone = through(`http://127.0.0.1:${await freePort()}`);
    const error = await keystone
      .authenticate(cast.member.token, undefined)
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ status: 503, headers: { "Retry-After": "5" } });
  });

  it("answers 503 when Keystone accepts the connection but never answers", async () => {
    const hung = await proxy("blackhole");
    const metrics = createMetrics();
    const keystone = through(hung.url, { timeoutMs: 300, connectTimeoutMs: 300, metrics });
    await expect(keystone.authenticate(cast.member.token, undefined)).rejects.toMatchObject({ status: 503 });
    expect(
      await counterValue(metrics.registry, "picasso_keystone_requests_total", { outcome: "timeout" }),
    ).toBe(1);
  });

  it("answers 503 when Keystone answers 5xx", async () => {
    const broken = await proxy("http500");
    const metrics = createMetrics();
    const keystone = through(broken.url, { metrics });
    await expect(keystone.authenticate(cast.member.token, undefined)).rejects.toMatchObject({ status: 503 });
    expect(
      await counterValue(metrics.registry, "picasso_keystone_requests_total", { outcome: "error" }),
    ).toBe(1);
  });

  it("answers 503 for the service token too, and recovers when Keystone is back", async () => {
    const pipe = await proxy("reset");
    const service = await admin.createUser();
    const project = await admin.createProject();
    try {
      await admin.grant(project.id, service.id, "service");
      const keystone = through(pipe.url, {
        serviceCredentials: {
          kind: "password",
          username: service.name,
          password: service.password,
          userDomainName: "Default",
          projectName: project.name,
          projectDomainName: "Default",
        },
      });
      await keystone.warmUp();
      await expect(keystone.authenticate(cast.member.token, undefined)).rejects.toMatchObject({
        status: 503,
      });
      pipe.mode = "pipe";
      expect((await keystone.authenticate(cast.member.token, undefined)).userId).toBe(cast.member.id);
    } finally {
      await removeQuietly(admin, { users: [service.id], projects: [project.id] });
    }
  });

  it("warms up without throwing while Keystone is down", async () => {
    const logs = captureLogs();
    const keystone = through(`http://127.0.0.1:${await freePort()}`, { logger: logs.logger });
    await expect(keystone.warmUp()).resolves.toBeUndefined();
    expect(logs.text()).toContain("Keystone not reachable yet");
    await expect(keystone.ping()).rejects.toThrow();
  });
});
