import { swaggerUI } from "@hono/swagger-ui";
import type { AppRouter } from "../../lib/create-router.ts";

export const openApiPath = "/api/openapi.json";
const legacyOpenApiPath = "/api/swagger.json";
const assetsBase = "/api/assets";

/**
 * Serves the OpenAPI 3.1 document (also at the original's /api/swagger.json) and Swagger UI.
 * The UI's scripts come from this server, never a CDN: control planes often have no internet.
 */
export function registerDocs(app: AppRouter, info: { version: string }) {
  const config = {
    openapi: "3.1.0",
    info: {
      title: "Picasso",
      version: info.version,
      description:
        "Functions-as-a-Service for OpenStack. Management calls and private invocations need a Keystone v3 token in `X-Auth-Token`.",
    },
    tags: [
      { name: "apps", description: "Applications of a project" },
      { name: "routes", description: "Functions (routes) of an application" },
      { name: "invocation", description: "Calling functions" },
      { name: "meta", description: "Versions, health and documentation" },
    ],
  };
  // Built on first use, when every resource has registered its routes; the document never changes.
  let document: string | undefined;
  const serveDocument = () => {
    document ??= JSON.stringify(app.getOpenAPI31Document(config));
    return new Response(document, { headers: { "content-type": "application/json" } });
  };
  app.get(openApiPath, serveDocument);
  app.get(legacyOpenApiPath, serveDocument);
  app.get("/api", swaggerUI({ url: openApiPath, baseUrl: assetsBase, title: "Picasso API" }));
  app.get(`${assetsBase}/swagger-ui-dist/:file`, async (c) => {
    const asset = await c.get("services").assets?.(c.req.param("file"));
    if (!asset) return c.notFound();
    return c.body(asset.body as Uint8Array<ArrayBuffer>, 200, {
      "content-type": asset.contentType,
      "cache-control": "public, max-age=86400",
    });
  });
}
