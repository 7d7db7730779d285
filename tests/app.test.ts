import { afterAll, describe, expect, it } from "vitest";
import { testApp } from "./support/app.ts";
import { openTestDatabase } from "./support/db.ts";

const database = openTestDatabase();
afterAll(() => database.close());

describe("app.fetch without a server", () => {
  it("answers a plain Request", async () => {
    const { app } = testApp(database);
    const response = await app.fetch(new Request("http://picasso.test/"));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { versions: { id: string; links: { href: string }[] }[] };
    expect(body.versions[0]?.id).toBe("v1");
    expect(body.versions[0]?.links[0]?.href).toBe("http://picasso.test/v1/");
  });

  it("keeps no state between two apps", async () => {
    const first = testApp(database, { publicUrl: "https://one.example" });
    const second = testApp(database, { publicUrl: "https://two.example" });
    const [a, b] = await Promise.all([
      Promise.resolve(first.app.fetch(new Request("http://x/"))).then((r) => r.json()),
      Promise.resolve(second.app.fetch(new Request("http://x/"))).then((r) => r.json()),
    ]);
    expect(JSON.stringify(a)).toContain("https://one.example/v1/");
    expect(JSON.stringify(b)).toContain("https://two.example/v1/");
  });

  it("answers unknown paths with the JSON error shape and a request id", async () => {
    const { app } = testApp(database);
    const response = await app.fetch(new Request("http://x/no/such/thing"));
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toContain("application/json");
    expect(response.headers.get("x-openstack-request-id")).toMatch(/^req-[0-9a-f-]{36}$/);
    expect(await response.json()).toEqual({
      error: { message: "Not found: GET /no/such/thing", code: "not_found" },
    });
  });

  it("keeps a well-formed incoming request id and replaces a malformed one", async () => {
    const { app } = testApp(database);
    const id = "req-0f8fad5b-d9cb-469f-a165-70867728950e";
    const kept = await app.fetch(new Request("http://x/", { headers: { "x-openstack-request-id": id } }));
    expect(kept.headers.get("x-openstack-request-id")).toBe(id);
    const replaced = await app.fetch(
      new Request("http://x/", { headers: { "x-openstack-request-id": "req-<script>" } }),
    );
    expect(replaced.headers.get("x-openstack-request-id")).not.toBe("req-<script>");
  });

  it("serves the OpenAPI 3.1 document at both paths", async () => {
    const { app } = testApp(database);
    for (const path of ["/api/openapi.json", "/api/swagger.json"]) {
      const response = await app.fetch(new Request(`http://x${path}`));
      expect(response.status).toBe(200);
      const document = (await response.json()) as { openapi: string; paths: Record<string, unknown> };
      expect(document.openapi).toBe("3.1.0");
      expect(Object.keys(document.paths)).toContain("/");
    }
  });

  it("serves Swagger UI from local assets, never a CDN", async () => {
    const { app } = testApp(database, {
      assets: async (name) =>
        name === "swagger-ui.css"
          ? { body: new TextEncoder().encode("body{}"), contentType: "text/css" }
          : null,
    });
    const page = await (await app.fetch(new Request("http://x/api"))).text();
    expect(page).toContain("/api/assets/swagger-ui-dist/swagger-ui-bundle.js");
    expect(page).not.toMatch(/https?:\/\//);
    const css = await app.fetch(new Request("http://x/api/assets/swagger-ui-dist/swagger-ui.css"));
    expect(css.status).toBe(200);
    expect(await css.text()).toBe("body{}");
    const missing = await app.fetch(new Request("http://x/api/assets/swagger-ui-dist/..%2Fpackage.json"));
    expect(missing.status).toBe(404);
  });
});
