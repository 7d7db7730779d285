// Rate limits on invocations over real HTTP, counters in memory: a burst gets exactly rate +
// burst through, then 429 with Retry-After and X-RateLimit-*, and the engine never sees the
// limited ones. Public buckets are per client address (X-Forwarded-For only from trusted
// proxies), private ones per project.
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultRoleNames } from "../../../app/services/auth/types.ts";
import { createMetrics } from "../../../app/services/metrics/index.ts";
import { createNoAuthAuthenticator } from "../../../app/services/noauth/index.ts";
import { parseTrustedProxies } from "../../../app/services/rate-limit/client-address.ts";
import { createRateLimiter } from "../../../app/services/rate-limit/index.ts";
import { openTestDatabase } from "../../support/db.ts";
import { type InvokeHarness, seedRoute, startInvokeHarness } from "../../support/invoke-harness.ts";
import { recordingLogger } from "../../support/logger.ts";
import { inOneWindow } from "../../support/rate-limit.ts";

const database = openTestDatabase();
let harness: InvokeHarness;
const metrics = createMetrics();
const limiterLog = recordingLogger();
/** Defaults: public 2/s + 3 at once, private 3/s + 1; only the harness's own address is a proxy. */
const publicAtOnce = 5;
const privateAtOnce = 4;

beforeAll(async () => {
  harness = await startInvokeHarness(database, {
    metrics,
    authenticator: createNoAuthAuthenticator(defaultRoleNames),
    rateLimiter: createRateLimiter({
      defaults: { public: { rate: 2, burst: 3 }, private: { rate: 3, burst: 1 } },
      trustedProxies: parseTrustedProxies("127.0.0.1"),
      logger: limiterLog,
      metrics,
    }),
  });
});
afterAll(async () => {
  await harness.close();
  await database.close();
});

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

/** One request on its own connection from `from` (any 127.x address reaches the server). */
function send(
  path: string,
  options: { from?: string; headers?: Record<string, string>; method?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${harness.base}${path}`,
      {
        method: options.method ?? "GET",
        headers: options.headers,
        localAddress: options.from ?? "127.0.0.2",
        agent: false,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const burst = (n: number, path: string, options?: Parameters<typeof send>[1]) =>
  Promise.all(Array.from({ length: n }, () => send(path, options)));
const ok = (answers: Answer[]) => answers.filter((answer) => answer.status === 200);
const limited = (answers: Answer[]) => answers.filter((answer) => answer.status === 429);
const reachedEngine = (engineApp: string) =>
  harness.fake.invocations.filter((invocation) => invocation.app === engineApp).length;

describe("rate limited invocation", () => {
  it("lets exactly rate + burst of a burst through, then 429 with Retry-After and X-RateLimit-*; the engine sees only those let through", async () => {
    const { answers, engineApp } = await inOneWindow(async () => {
      const seeded = await seedRoute(database, harness.fake);
      return { engineApp: seeded.engineApp, answers: await burst(9, `/r/${seeded.appName}/hello`) };
    });
    expect(ok(answers)).toHaveLength(publicAtOnce);
    expect(limited(answers)).toHaveLength(9 - publicAtOnce);
    for (const answer of limited(answers)) {
      expect(answer.headers).toMatchObject({
        "content-type": expect.stringMatching(/^application\/json/),
        "retry-after": "1",
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "1",
      });
      expect(JSON.parse(answer.body)).toEqual({
        error: {
          code: "rate_limited",
          message: "Rate limit exceeded: at most 2 invocations per second plus a burst of 3; retry after 1 s",
        },
      });
    }
    // Successful invocations carry the headers too (the Node fast path writes them with the function's).
    for (const answer of ok(answers)) {
      expect(answer.body.trim()).toBe("Hello World!");
      expect(answer.headers["x-ratelimit-limit"]).toBe("2");
      expect(answer.headers["x-ratelimit-reset"]).toBe("1");
      expect(["0", "1"]).toContain(answer.headers["x-ratelimit-remaining"]);
    }
    expect(reachedEngine(engineApp)).toBe(publicAtOnce);
    expect(await metrics.registry.getSingleMetricAsString("picasso_rate_limited_total")).toMatch(
      /kind="public"\} [1-9]/,
    );
  });

  it("answers again after the Retry-After it gave, with the rate and not the burst", async () => {
    const { appName, engineApp, first } = await inOneWindow(async () => {
      const seeded = await seedRoute(database, harness.fake);
      return { ...seeded, first: await burst(publicAtOnce + 2, `/r/${seeded.appName}/hello`) };
    });
    const refusal = limited(first)[0];
    expect(refusal?.headers["retry-after"]).toBe("1");
    await new Promise((resolve) => setTimeout(resolve, Number(refusal?.headers["retry-after"]) * 1000 + 50));
    const second = await burst(4, `/r/${appName}/hello`);
    expect(ok(second)).toHaveLength(2);
    expect(reachedEngine(engineApp)).toBe(ok(first).length + 2);
  });

  it("a route's own rate_limit and rate_limit_burst replace the defaults", async () => {
    const answers = await inOneWindow(async () => {
      const { appName } = await seedRoute(database, harness.fake, { rateLimit: 1, rateLimitBurst: 1 });
      return burst(6, `/r/${appName}/hello`);
    });
    expect(ok(answers)).toHaveLength(2);
    expect(limited(answers)[0]?.headers["x-ratelimit-limit"]).toBe("1");
  });

  it("counts public invocations per client address", async () => {
    const results = await inOneWindow(async () => {
      const { appName } = await seedRoute(database, harness.fake);
      const path = `/r/${appName}/hello`;
      return Promise.all([burst(7, path, { from: "127.0.0.2" }), burst(7, path, { from: "127.0.0.3" })]);
    });
    expect(results.map((answers) => ok(answers).length)).toEqual([publicAtOnce, publicAtOnce]);
  });

  it("behind a trusted proxy, gives each X-Forwarded-For client its own bucket", async () => {
    const results = await inOneWindow(async () => {
      const { appName } = await seedRoute(database, harness.fake);
      const path = `/r/${appName}/hello`;
      const via = (client: string) => ({ from: "127.0.0.1", headers: { "x-forwarded-for": client } });
      return Promise.all([
        burst(7, path, via("198.51.100.1")),
        burst(7, path, via("203.0.113.50, 198.51.100.2")),
        // The same client through a chain of trusted proxies.
        burst(2, path, via("198.51.100.1, 127.0.0.1")),
      ]);
    });
    expect(results.map((answers) => ok(answers).length)).toEqual([publicAtOnce, publicAtOnce, 0]);
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", async () => {
    const answers = await inOneWindow(async () => {
      const { appName } = await seedRoute(database, harness.fake);
      return Promise.all(
        Array.from({ length: 8 }, (_, index) =>
          send(`/r/${appName}/hello`, {
            from: "127.0.0.4",
            headers: { "x-forwarded-for": `198.51.100.${index + 10}` },
          }),
        ),
      );
    });
    expect(ok(answers)).toHaveLength(publicAtOnce);
  });

  it("counts private invocations per project, whatever address they come from", async () => {
    const { answers, engineApp } = await inOneWindow(async () => {
      const seeded = await seedRoute(database, harness.fake, { isPublic: false });
      const path = `/v1/r/${seeded.projectId}/${seeded.appName}/hello`;
      const results = await Promise.all([
        burst(3, path, { from: "127.0.0.2" }),
        burst(3, path, { from: "127.0.0.3" }),
        burst(3, path, { from: "127.0.0.1", headers: { "x-forwarded-for": "198.51.100.9" } }),
      ]);
      return { engineApp: seeded.engineApp, answers: results.flat() };
    });
    expect(ok(answers)).toHaveLength(privateAtOnce);
    expect(limited(answers)).toHaveLength(9 - privateAtOnce);
    expect(limited(answers)[0]?.headers["x-ratelimit-limit"]).toBe("3");
    expect(reachedEngine(engineApp)).toBe(privateAtOnce);
    // A public route invoked privately counts in the project's bucket, not the address's.
    const publicRoute = await seedRoute(database, harness.fake);
    const viaProject = await burst(
      privateAtOnce,
      `/v1/r/${publicRoute.projectId}/${publicRoute.appName}/hello`,
    );
    expect(ok(viaProject)).toHaveLength(privateAtOnce);
    expect(ok(await burst(1, `/r/${publicRoute.appName}/hello`))).toHaveLength(1);
  });

  it("on the portable path (no socket), adds the headers to the Response; callers share one bucket", async () => {
    const { appName, engineApp } = await seedRoute(database, harness.fake, {
      rateLimit: 1,
      rateLimitBurst: 1,
    });
    const invoke = () =>
      harness.app.fetch(
        new Request(`http://picasso.test/r/${appName}/hello`, {
          headers: { "x-forwarded-for": "198.51.100.77" },
        }),
      );
    const responses = await inOneWindow(() => Promise.all([invoke(), invoke(), invoke()]));
    const statuses = responses.map((response) => response.status).sort();
    expect(statuses).toEqual([200, 200, 429]);
    for (const response of responses) {
      expect(response.headers.get("x-ratelimit-limit")).toBe("1");
      await response.arrayBuffer();
    }
    expect(responses.find((response) => response.status === 429)?.headers.get("retry-after")).toBe("1");
    expect(reachedEngine(engineApp)).toBe(2);
    expect(limiterLog.entries.filter((entry) => entry.message.includes("no client address"))).toHaveLength(1);
  });
  it("is documented in the OpenAPI document: 429 and its headers on every invocation route, the route fields", async () => {
    const document = await (
      await harness.app.fetch(new Request("http://picasso.test/api/openapi.json"))
    ).json();
    for (const path of ["/r/{app}/{route_path}", "/v1/r/{project_id}/{app}/{route_path}"]) {
      for (const method of ["get", "post", "put", "patch", "delete"]) {
        const responses = document.paths[path][method].responses;
        expect(Object.keys(responses[429].headers)).toEqual([
          "Retry-After",
          "X-RateLimit-Limit",
          "X-RateLimit-Remaining",
          "X-RateLimit-Reset",
        ]);
        expect(Object.keys(responses[200].headers)).toContain("X-RateLimit-Remaining");
      }
    }
    for (const schema of ["RouteCreate", "RoutePut", "RoutePatch", "Route"]) {
      expect(document.components.schemas[schema].properties).toHaveProperty("rate_limit");
      expect(document.components.schemas[schema].properties).toHaveProperty("rate_limit_burst");
    }
    expect(document.components.schemas.RouteCreate.properties.rate_limit).toMatchObject({
      minimum: 1,
      maximum: 100000,
    });
  });
});
