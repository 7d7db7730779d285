import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../app/lib/logger.ts";
import { swaggerUiAssets } from "../../app/node/assets.ts";
import { listen, type RunningServer } from "../../app/node/server.ts";
import { testApp } from "../support/app.ts";
import { openTestDatabase } from "../support/db.ts";

const chromiumPath = "/usr/bin/chromium";
const hasChromium = existsSync(chromiumPath);
if (!hasChromium) {
  console.warn(
    `tests/browser: SKIPPED, ${chromiumPath} is not installed (scripts/test.sh installs Debian's chromium)`,
  );
}

const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

type OpenApiDocument = {
  tags?: { name: string }[];
  paths: Record<string, Record<string, { tags?: string[] }>>;
};

const httpMethods = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);

describe.skipIf(!hasChromium)("API explorer at /api in Chromium", () => {
  const database = openTestDatabase();
  let server: RunningServer;
  let context: BrowserContext;
  let profile: string;
  let base: string;
  /** Every URL the browser requested, from any page of the context. */
  const requested: string[] = [];

  beforeAll(async () => {
    const { app, services } = testApp(database, { assets: swaggerUiAssets() });
    server = await listen({
      fetch: app.fetch,
      host: "127.0.0.1",
      port: 0,
      logger: silentLogger,
      lifecycle: services.lifecycle,
    });
    base = `http://127.0.0.1:${server.port}`;
    profile = await mkdtemp(join(tmpdir(), "picasso-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
    });
    context.on("request", (request) => requested.push(request.url()));
  });

  afterAll(async () => {
    await context?.close();
    await server?.shutdown(1000);
    await database.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it("renders every tag and operation of the OpenAPI document, loading nothing from outside 127.0.0.1", async () => {
    const document = (await (await fetch(`${base}/api/openapi.json`)).json()) as OpenApiDocument;
    const operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => httpMethods.has(method))
        .map(([method, operation]) => ({ path, method, tags: operation.tags ?? ["default"] })),
    );
    // Swagger UI shows declared tags even before they have operations; both kinds must render.
    const declared = (document.tags ?? []).map((tag) => tag.name);
    const tags = [...new Set([...declared, ...operations.flatMap((operation) => operation.tags)])];
    expect(tags).toContain("meta");

    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    const response = await page.goto(`${base}/api`);
    expect(response?.status()).toBe(200);
    await page.locator(".opblock-tag-section").first().waitFor({ timeout: 20_000 });

    for (const tag of tags) {
      await expect(page.locator(`.opblock-tag[data-tag="${tag}"]`).count()).resolves.toBe(1);
    }
    for (const { path, method, tags: operationTags } of operations) {
      for (const tag of operationTags) {
        const section = page.locator(`.opblock-tag-section:has(.opblock-tag[data-tag="${tag}"])`);
        const operation = section.locator(
          `.opblock-${method}:has(.opblock-summary-path[data-path="${path}"])`,
        );
        await expect(operation.count(), `${method.toUpperCase()} ${path} under ${tag}`).resolves.toBe(1);
      }
    }

    // The explorer talks to this server: try /healthcheck from the page.
    const healthcheck = page.locator('.opblock-get:has(.opblock-summary-path[data-path="/healthcheck"])');
    await healthcheck.locator(".opblock-summary").click();
    await healthcheck.locator("button.try-out__btn").click();
    await healthcheck.locator("button.execute").click();
    const status = healthcheck.locator(".live-responses-table tr.response .response-col_status");
    await status.waitFor();
    expect((await status.textContent())?.trim()).toBe("200");

    expect(pageErrors).toEqual([]);
    expect(requested.length).toBeGreaterThan(3);
    const outside = requested.filter((url) => {
      const parsed = new URL(url);
      if (parsed.protocol === "data:" || parsed.protocol === "blob:") return false;
      return parsed.hostname !== "127.0.0.1";
    });
    expect(outside).toEqual([]);
    await page.close();
  }, 60_000);
});
