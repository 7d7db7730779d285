import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestDatabase } from "../../support/db.ts";
import { type InvokeHarness, seedRoute, startInvokeHarness } from "../../support/invoke-harness.ts";

const database = openTestDatabase();
let harness: InvokeHarness;
const serverLimit = 10_000;

beforeAll(async () => {
  harness = await startInvokeHarness(database, { invocation: { maxBodyBytes: serverLimit } });
});
afterAll(async () => {
  await harness.close();
  await database.close();
});

describe("route max_body_bytes", () => {
  it("answers 413 above the route's own limit although the server's is larger", async () => {
    const { appName, engineApp } = await seedRoute(database, harness.fake, {
      maxBodyBytes: 1000,
      route: { path: "/echo", image: "echo" },
    });
    harness.fake.clearRequests();
    const response = await fetch(`${harness.base}/r/${appName}/echo`, {
      method: "POST",
      body: new Uint8Array(1001),
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({
      error: { code: "payload_too_large", message: "Request body is larger than 1000 bytes" },
    });
    expect(
      harness.fake.requests.filter((request) => request.path.startsWith(`/r/${engineApp}`)),
    ).toHaveLength(0);

    const atLimit = await fetch(`${harness.base}/r/${appName}/echo`, {
      method: "POST",
      body: new Uint8Array(1000).fill(120),
    });
    expect(atLimit.status).toBe(200);
    expect((await atLimit.arrayBuffer()).byteLength).toBe(1000);
  });

  it("stops a chunked upload at the route's limit", async () => {
    const { appName } = await seedRoute(database, harness.fake, {
      maxBodyBytes: 1000,
      route: { path: "/echo", image: "echo" },
    });
    const upload = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(600));
        controller.enqueue(new Uint8Array(600));
        controller.close();
      },
    });
    const response = await fetch(`${harness.base}/r/${appName}/echo`, {
      method: "POST",
      body: upload,
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(413);
  });

  it("accepts a body over the server's default when the route allows more", async () => {
    const { appName } = await seedRoute(database, harness.fake, {
      maxBodyBytes: 50_000,
      route: { path: "/echo", image: "echo" },
    });
    const response = await fetch(`${harness.base}/r/${appName}/echo`, {
      method: "POST",
      body: new Uint8Array(serverLimit + 5000).fill(121),
    });
    expect(response.status).toBe(200);
    expect((await response.arrayBuffer()).byteLength).toBe(serverLimit + 5000);
  });

  it("applies the route's limit on the portable app.fetch path too", async () => {
    const { appName } = await seedRoute(database, harness.fake, {
      maxBodyBytes: 20_000,
      route: { path: "/echo", image: "echo" },
    });
    const over = await harness.app.fetch(
      new Request(`http://picasso.test/r/${appName}/echo`, { method: "POST", body: new Uint8Array(20_001) }),
    );
    expect(over.status).toBe(413);
    const under = await harness.app.fetch(
      new Request(`http://picasso.test/r/${appName}/echo`, { method: "POST", body: new Uint8Array(15_000) }),
    );
    expect(under.status).toBe(200);
    expect((await under.arrayBuffer()).byteLength).toBe(15_000);
  });

  it("keeps the server's default for a route without one", async () => {
    const { appName } = await seedRoute(database, harness.fake, { route: { path: "/echo", image: "echo" } });
    const response = await fetch(`${harness.base}/r/${appName}/echo`, {
      method: "POST",
      body: new Uint8Array(serverLimit + 1),
    });
    expect(response.status).toBe(413);
  });
});

const credentialHeaders = {
  "x-auth-token": "secret-token",
  authorization: "Bearer tenant-user",
  cookie: "session=abc",
  "proxy-authorization": "Basic secret",
  connection: "x-hop",
  "x-hop": "hop-value",
  "x-kept": "kept",
};

describe("route forward_auth_headers", () => {
  it("true: the function sees Authorization and Cookie, never X-Auth-Token or hop-by-hop headers", async () => {
    const { appName, engineApp } = await seedRoute(database, harness.fake, {
      forwardAuthHeaders: true,
      route: { path: "/env", image: "env" },
    });
    harness.fake.clearInvocations();
    const response = await rawRequest(`${harness.base}/r/${appName}/env`, credentialHeaders);
    expect(response.status).toBe(200);
    const env = JSON.parse(response.body) as Record<string, string>;
    expect(env.HEADER_AUTHORIZATION).toBe("Bearer tenant-user");
    expect(env.HEADER_COOKIE).toBe("session=abc");
    expect(env.HEADER_X_KEPT).toBe("kept");
    for (const name of ["HEADER_X_AUTH_TOKEN", "HEADER_PROXY_AUTHORIZATION", "HEADER_X_HOP"]) {
      expect(env).not.toHaveProperty(name);
    }
    // The engine connection's own keep-alive may show here; the client's Connection never does.
    expect(env.HEADER_CONNECTION).not.toBe("x-hop");
    const call = harness.fake.invocations.find((invocation) => invocation.app === engineApp);
    const names = Object.keys(call?.headers ?? {});
    expect(names).toEqual(expect.arrayContaining(["authorization", "cookie"]));
    expect(names).not.toContain("x-auth-token");
    expect(response.body).not.toContain("secret");
  });

  it("true on the portable app.fetch path as well", async () => {
    const { appName } = await seedRoute(database, harness.fake, {
      forwardAuthHeaders: true,
      route: { path: "/env", image: "env" },
    });
    const response = await harness.app.fetch(
      new Request(`http://picasso.test/r/${appName}/env`, {
        method: "POST",
        headers: {
          "x-auth-token": "secret-token",
          authorization: "Bearer tenant-user",
          cookie: "session=abc",
        },
        body: "{}",
      }),
    );
    expect(response.status).toBe(200);
    const env = JSON.parse(await response.text()) as Record<string, string>;
    expect(env.HEADER_AUTHORIZATION).toBe("Bearer tenant-user");
    expect(env.HEADER_COOKIE).toBe("session=abc");
    expect(env).not.toHaveProperty("HEADER_X_AUTH_TOKEN");
  });

  it("false: the function sees neither", async () => {
    const { appName } = await seedRoute(database, harness.fake, { route: { path: "/env", image: "env" } });
    const response = await rawRequest(`${harness.base}/r/${appName}/env`, credentialHeaders);
    expect(response.status).toBe(200);
    const env = JSON.parse(response.body) as Record<string, string>;
    expect(env.HEADER_X_KEPT).toBe("kept");
    for (const name of ["HEADER_AUTHORIZATION", "HEADER_COOKIE", "HEADER_X_AUTH_TOKEN"]) {
      expect(env).not.toHaveProperty(name);
    }
  });
});

/** node:http, because fetch drops Connection and friends before they leave the client. */
function rawRequest(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: "POST", headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", reject);
    request.end("{}");
  });
}
