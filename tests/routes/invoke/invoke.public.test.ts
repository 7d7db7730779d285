import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestDatabase } from "../../support/db.ts";
import { type InvokeHarness, seedRoute, startInvokeHarness } from "../../support/invoke-harness.ts";

const database = openTestDatabase();
afterAll(() => database.close());

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

// Node answers invocations before the app (pre-routed) unless the URL needs Hono's decoding; both
// ways must behave the same.
describe.each([
  ["pre-routed on Node", true],
  ["through the app on Node", false],
])("%s", (_way, preRouted) => {
  let harness: InvokeHarness;

  beforeAll(async () => {
    harness = await startInvokeHarness(
      database,
      { invocation: { maxBodyBytes: 128 * 1024 * 1024 } },
      { preRouted },
    );
  });
  afterAll(() => harness.close());

  describe("public invocation: happy paths", () => {
    it("runs the function and returns its output unchanged", async () => {
      const { appName } = await seedRoute(database, harness.fake);
      const response = await fetch(`${harness.base}/r/${appName}/hello`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "Ann" }),
      });
      expect(response.status).toBe(200);
      expect((await response.text()).trim()).toBe("Hello Ann!");
      expect(response.headers.get("x-openstack-request-id")).toMatch(/^req-/);
    });

    it("round-trips a 100 MiB binary body byte for byte", async () => {
      const { appName } = await seedRoute(database, harness.fake, {
        route: { path: "/echo", image: "echo" },
      });
      const payload = randomBytes(100 * 1024 * 1024);
      const response = await fetch(`${harness.base}/r/${appName}/echo`, {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: payload,
      });
      expect(response.status).toBe(200);
      const received = new Uint8Array(await response.arrayBuffer());
      expect(received.byteLength).toBe(payload.byteLength);
      expect(sha256(received)).toBe(sha256(payload));
    }, 60_000);

    it("streams: the engine's answer to the first chunk arrives before the upload ends", async () => {
      const { appName } = await seedRoute(database, harness.fake, {
        route: { path: "/echo", image: "echo" },
      });
      let sendSecond: () => void = () => {};
      const secondMayGo = new Promise<void>((resolve) => {
        sendSecond = resolve;
      });
      const first = new Uint8Array(4096).fill(97);
      const second = new Uint8Array(4096).fill(98);
      const upload = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(first);
          await secondMayGo;
          controller.enqueue(second);
          controller.close();
        },
      });
      const response = await fetch(`${harness.base}/r/${appName}/echo`, {
        method: "POST",
        body: upload,
        duplex: "half",
      } as RequestInit);
      expect(response.status).toBe(200);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let echoed = 0;
      while (echoed < first.byteLength) {
        const { value, done } = await reader.read();
        if (done) throw new Error("response ended before the first chunk came back");
        echoed += value.byteLength;
      }
      // Only now does the client send the rest: the first chunk made the whole round trip alone.
      sendSecond();
      let rest = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      expect(echoed + rest.length).toBe(first.byteLength + second.byteLength);
      expect(rest.endsWith("b".repeat(100))).toBe(true);
    });

    it.each(["GET", "PUT", "DELETE", "PATCH", "POST"])(
      "passes %s, the query string and headers through",
      async (method) => {
        const { appName, engineApp } = await seedRoute(database, harness.fake, {
          route: { path: "/env", image: "env" },
        });
        const response = await fetch(`${harness.base}/r/${appName}/env?a=1&b=two%20words`, {
          method,
          headers: { "x-custom": "kept", "content-type": "application/x-thing" },
          body: method === "GET" ? undefined : new Uint8Array([0, 1, 2, 255]),
        });
        expect(response.status).toBe(200);
        const env = JSON.parse(await response.text()) as Record<string, string>;
        expect(env.METHOD).toBe(method);
        expect(env.REQUEST_URL).toContain(`/r/${engineApp}/env?a=1&b=two%20words`);
        expect(env.HEADER_X_CUSTOM).toBe("kept");
        if (method !== "GET") expect(env.HEADER_CONTENT_TYPE).toBe("application/x-thing");
      },
    );

    it("passes binary output and its status through", async () => {
      const { appName } = await seedRoute(database, harness.fake, {
        route: { path: "/bytes", image: "bytes", config: { BYTES: "70000" } },
      });
      const response = await fetch(`${harness.base}/r/${appName}/bytes`);
      expect(response.status).toBe(200);
      expect((await response.arrayBuffer()).byteLength).toBe(70000);
    });

    it("answers an async route with 202, the call id in the body and in X-Call-Id", async () => {
      const { appName, engineApp } = await seedRoute(database, harness.fake, {
        route: { path: "/later", image: "hello", type: "async" },
      });
      const response = await fetch(`${harness.base}/r/${appName}/later`, {
        method: "POST",
        body: '{"name":"Bo"}',
      });
      expect(response.status).toBe(202);
      const body = (await response.json()) as { call_id: string };
      expect(body.call_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(response.headers.get("x-call-id")).toBe(body.call_id);
      const ran = await harness.fake.waitForInvocation(
        (call) => call.app === engineApp && call.type === "async",
        10_000,
      );
      expect(ran.stdout.trim()).toBe("Hello Bo!");
    });

    it("cancels the engine's call when the client goes away", async () => {
      const { appName, engineApp } = await seedRoute(database, harness.fake, {
        route: { path: "/sleep", image: "sleep", timeout: 20, config: { SLEEP_SECONDS: "15" } },
      });
      const client = new AbortController();
      const pending = fetch(`${harness.base}/r/${appName}/sleep`, {
        method: "POST",
        signal: client.signal,
      }).catch((error: Error) => error);
      await waitUntil(() =>
        harness.fake.invocations.some((call) => call.app === engineApp && call.status === "running"),
      );
      client.abort();
      expect(await pending).toBeInstanceOf(Error);
      const cancelled = await harness.fake.waitForInvocation((call) => call.app === engineApp, 10_000);
      expect(cancelled.error).toBe("client went away");
      // Counted as cancelled, not as an engine failure.
      const counted =
        await harness.services.metrics.registry.getSingleMetricAsString("picasso_invocations_total");
      expect(counted).toMatch(/outcome="cancelled"\} [1-9]/);
    });

    it("sends the request id to the engine and returns it", async () => {
      const { appName, engineApp } = await seedRoute(database, harness.fake, {
        route: { path: "/env", image: "env" },
      });
      const id = "req-7d9b5f3c-2a4e-4c1b-9f0e-3b2a1c0d9e8f";
      const response = await fetch(`${harness.base}/r/${appName}/env`, {
        headers: { "x-openstack-request-id": id },
      });
      expect(response.headers.get("x-openstack-request-id")).toBe(id);
      const env = JSON.parse(await response.text()) as Record<string, string>;
      expect(env.HEADER_X_OPENSTACK_REQUEST_ID).toBe(id);
      expect(harness.fake.invocations.some((call) => call.app === engineApp)).toBe(true);
    });
  });

  describe("public invocation without Node bindings (app.fetch)", () => {
    it("streams the function's answer through the portable Response path", async () => {
      const { appName } = await seedRoute(database, harness.fake);
      const response = await harness.app.fetch(
        new Request(`http://picasso.test/r/${appName}/hello`, { method: "POST", body: '{"name":"Fetch"}' }),
      );
      expect(response.status).toBe(200);
      expect((await response.text()).trim()).toBe("Hello Fetch!");
    });

    it("answers async calls with X-Call-Id and a lost route with Picasso's own 404", async () => {
      const later = await seedRoute(database, harness.fake, { route: { path: "/later", type: "async" } });
      const queued = await harness.app.fetch(
        new Request(`http://picasso.test/r/${later.appName}/later`, { method: "POST" }),
      );
      expect(queued.status).toBe(202);
      expect(queued.headers.get("x-call-id")).toBe(((await queued.json()) as { call_id: string }).call_id);
      const lost = await seedRoute(database, null);
      const missing = await harness.app.fetch(new Request(`http://picasso.test/r/${lost.appName}/hello`));
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ error: { code: "not_found" } });
    });
  });

  describe("public invocation: errors", () => {
    it("answers 404 JSON for an unknown app and an unknown route", async () => {
      const { appName } = await seedRoute(database, harness.fake);
      for (const path of [`/r/no-such-app/hello`, `/r/${appName}/nope`, `/r/${appName}/hello%2Fx`]) {
        const response = await fetch(`${harness.base}${path}`);
        expect(response.status).toBe(404);
        expect(await response.json()).toMatchObject({ error: { code: "not_found" } });
      }
    });

    it("answers 404, not 500, for app names and paths no route can have (non-ASCII)", async () => {
      const { appName } = await seedRoute(database, harness.fake);
      // MySQL refuses to compare the ASCII name and path columns with these characters.
      for (const path of [`/r/${appName}é/hello`, `/r/${appName}/hello%F0%9F%98%80`, `/r/%E2%80%AE/hello`]) {
        const response = await fetch(`${harness.base}${path}`);
        expect(response.status, path).toBe(404);
        expect(await response.json()).toMatchObject({ error: { code: "not_found" } });
      }
    });

    it("answers its own 404 when the engine has lost a route MySQL still has", async () => {
      // In MySQL only: as after another instance deleted it while this one still had it cached.
      const { appName } = await seedRoute(database, null);
      const response = await fetch(`${harness.base}/r/${appName}/hello`, { method: "POST", body: "{}" });
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: { message: "Route not found", code: "not_found" } });
    });

    it("refuses 413 from Content-Length before contacting the engine", async () => {
      const small = await startInvokeHarness(database, { invocation: { maxBodyBytes: 1000 } });
      try {
        const { appName, engineApp } = await seedRoute(database, small.fake, {
          route: { path: "/echo", image: "echo" },
        });
        small.fake.clearRequests();
        const response = await fetch(`${small.base}/r/${appName}/echo`, {
          method: "POST",
          body: new Uint8Array(1001),
        });
        expect(response.status).toBe(413);
        expect(await response.json()).toMatchObject({ error: { code: "payload_too_large" } });
        expect(
          small.fake.requests.filter((request) => request.path.startsWith(`/r/${engineApp}`)),
        ).toHaveLength(0);
      } finally {
        await small.close();
      }
    });

    it("refuses 413 as soon as a chunked upload crosses the limit", async () => {
      const small = await startInvokeHarness(database, { invocation: { maxBodyBytes: 10_000 } });
      try {
        const { appName } = await seedRoute(database, small.fake, {
          route: { path: "/sha", image: "sha256" },
        });
        let chunks = 0;
        const upload = new ReadableStream<Uint8Array>({
          pull(controller) {
            chunks += 1;
            if (chunks > 50_000) controller.close();
            else controller.enqueue(new Uint8Array(1024));
          },
        });
        const response = await fetch(`${small.base}/r/${appName}/sha`, {
          method: "POST",
          body: upload,
          duplex: "half",
        } as RequestInit);
        expect(response.status).toBe(413);
        // The gateway stopped the upload long before the client's 50 MiB were sent.
        expect(chunks).toBeLessThan(50_000);
      } finally {
        await small.close();
      }
    });

    it("answers 502 JSON while the engine is down", async () => {
      const { appName } = await seedRoute(database, harness.fake);
      harness.fake.setFault({ kind: "refuse-connections" });
      try {
        const response = await fetch(`${harness.base}/r/${appName}/hello`, { method: "POST", body: "{}" });
        expect(response.status).toBe(502);
        expect(await response.json()).toMatchObject({ error: { code: "bad_gateway" } });
      } finally {
        harness.fake.setFault(null);
      }
    });

    it("gives up with 504 JSON after the route's timeout plus the margin", async () => {
      const { appName } = await seedRoute(database, harness.fake, { route: { timeout: 1 } });
      harness.fake.setFault({ kind: "hang", scope: "r" });
      try {
        const response = await fetch(`${harness.base}/r/${appName}/hello`, { method: "POST", body: "{}" });
        expect(response.status).toBe(504);
        expect(await response.json()).toMatchObject({ error: { code: "gateway_timeout" } });
      } finally {
        harness.fake.setFault(null);
      }
    });

    it("passes the engine's own 500 and 504 through", async () => {
      const failing = await seedRoute(database, harness.fake, { route: { path: "/fail", image: "fail" } });
      const failed = await fetch(`${harness.base}/r/${failing.appName}/fail`, { method: "POST" });
      expect(failed.status).toBe(500);
      expect(((await failed.json()) as { error: { message: string } }).error.message).toBe("exit code 3");
      const slow = await seedRoute(database, harness.fake, {
        route: { path: "/sleep", image: "sleep", timeout: 1, config: { SLEEP_SECONDS: "5" } },
      });
      const timedOut = await fetch(`${harness.base}/r/${slow.appName}/sleep`, { method: "POST" });
      expect(timedOut.status).toBe(504);
    });

    it("refuses methods other than GET and POST on async routes (they crash the engine)", async () => {
      const { appName, engineApp } = await seedRoute(database, harness.fake, {
        route: { path: "/later", type: "async" },
      });
      harness.fake.clearRequests();
      const response = await fetch(`${harness.base}/r/${appName}/later`, { method: "PUT", body: "x" });
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBe("GET, POST");
      expect(
        harness.fake.requests.filter((request) => request.path.startsWith(`/r/${engineApp}`)),
      ).toHaveLength(0);
    });
  });

  describe("public invocation: security", () => {
    it("never invokes a private route through the public URL", async () => {
      const { appName, engineApp } = await seedRoute(database, harness.fake, { isPublic: false });
      harness.fake.clearRequests();
      const response = await fetch(`${harness.base}/r/${appName}/hello`, { method: "POST", body: "{}" });
      expect(response.status).toBe(403);
      expect(await response.json()).toMatchObject({ error: { code: "forbidden" } });
      expect(
        harness.fake.requests.filter((request) => request.path.startsWith(`/r/${engineApp}`)),
      ).toHaveLength(0);
    });

    it("forwards neither hop-by-hop headers nor credentials", async () => {
      const { appName, engineApp } = await seedRoute(database, harness.fake, {
        route: { path: "/env", image: "env" },
      });
      harness.fake.clearInvocations();
      // node:http, because fetch itself drops Connection and friends before they leave the client.
      const response = await rawRequest(`${harness.base}/r/${appName}/env`, {
        method: "POST",
        headers: {
          "x-auth-token": "secret-token",
          authorization: "Bearer secret",
          cookie: "session=secret",
          "proxy-authorization": "Basic secret",
          connection: "x-hop",
          "x-hop": "hop-value",
          "x-kept": "kept",
        },
        body: "{}",
      });
      expect(response.status).toBe(200);
      const call = harness.fake.invocations.find((invocation) => invocation.app === engineApp);
      const names = Object.keys(call?.headers ?? {});
      expect(names).toContain("x-kept");
      for (const name of ["x-auth-token", "authorization", "cookie", "proxy-authorization", "x-hop"]) {
        expect(names).not.toContain(name);
      }
      expect(response.body).not.toContain("secret");
    });
  });

  function rawRequest(
    url: string,
    options: { method: string; headers: Record<string, string>; body: string },
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(url, { method: options.method, headers: options.headers }, (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          body += chunk;
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      });
      request.on("error", reject);
      request.end(options.body);
    });
  }

  async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error("condition not met in time");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
});
