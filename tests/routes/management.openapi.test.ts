import { afterAll, describe, expect, it } from "vitest";
import { testApp } from "../support/app.ts";
import { openTestDatabase } from "../support/db.ts";

const database = openTestDatabase();
afterAll(() => database.close());

type Operation = {
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
};

describe("OpenAPI document of the management API", () => {
  it("documents every endpoint with schemas, errors, tags and the token scheme", async () => {
    const { app } = testApp(database);
    const document = (await (await app.fetch(new Request("http://x/api/openapi.json"))).json()) as {
      paths: Record<string, Record<string, Operation>>;
      components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
    };
    expect(document.components.securitySchemes.keystoneToken).toMatchObject({
      type: "apiKey",
      in: "header",
      name: "X-Auth-Token",
    });
    const expected: Record<string, [string, string[]]> = {
      "/v1/{project_id}/apps": ["apps", ["get", "post"]],
      "/v1/{project_id}/apps/{app}": ["apps", ["get", "put", "patch", "delete"]],
      "/v1/{project_id}/apps/{app}/routes": ["routes", ["get", "post"]],
      "/v1/{project_id}/apps/{app}/routes/{route}": ["routes", ["get", "put", "patch", "delete"]],
    };
    for (const [path, [tag, methods]] of Object.entries(expected)) {
      const item = document.paths[path];
      expect(item, path).toBeDefined();
      expect(Object.keys(item ?? {}).sort()).toEqual([...methods].sort());
      for (const method of methods) {
        const operation = item?.[method] as Operation;
        const where = `${method.toUpperCase()} ${path}`;
        expect(operation.tags, where).toEqual([tag]);
        expect(operation.security, where).toEqual([{ keystoneToken: [] }]);
        expect(operation.responses["200"]?.content?.["application/json"]?.schema, where).toBeDefined();
        for (const status of ["400", "401", "403", "404"]) {
          expect(
            operation.responses[status]?.content?.["application/json"]?.schema.$ref,
            `${where} ${status}`,
          ).toBe("#/components/schemas/Error");
        }
        if (method !== "get") {
          for (const status of ["502", "503", "504"])
            expect(operation.responses[status], `${where} ${status}`).toBeDefined();
        }
        if (method === "post" || method === "put" || method === "patch") {
          expect(operation.requestBody?.content["application/json"]?.schema, where).toBeDefined();
          expect(operation.responses["415"], where).toBeDefined();
        }
        if (method === "post") expect(operation.responses["409"], where).toBeDefined();
        const parameters = (operation.parameters ?? []).map(
          (parameter) => `${parameter.in}:${parameter.name}`,
        );
        for (const name of path.match(/\{(\w+)\}/g) ?? []) {
          expect(parameters, where).toContain(`path:${name.slice(1, -1)}`);
        }
      }
    }
    for (const schema of [
      "App",
      "AppCreate",
      "AppPut",
      "AppPatch",
      "Route",
      "RouteCreate",
      "RoutePut",
      "RoutePatch",
    ]) {
      expect(document.components.schemas[schema], schema).toBeDefined();
    }
  });

  it("documents the quota endpoints: read for the project, change and reset for admins", async () => {
    const { app } = testApp(database);
    const document = (await (await app.fetch(new Request("http://x/api/openapi.json"))).json()) as {
      paths: Record<string, Record<string, Operation & { description?: string }>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    const item = document.paths["/v1/{project_id}/quotas"];
    expect(Object.keys(item ?? {}).sort()).toEqual(["delete", "get", "put"]);
    for (const [method, operation] of Object.entries(item ?? {})) {
      expect(operation.tags, method).toEqual(["quotas"]);
      expect(operation.security, method).toEqual([{ keystoneToken: [] }]);
      expect((operation.parameters ?? []).map((p) => `${p.in}:${p.name}`)).toEqual(["path:project_id"]);
      for (const status of ["400", "401", "403"]) {
        expect(
          operation.responses[status]?.content?.["application/json"]?.schema.$ref,
          `${method} ${status}`,
        ).toBe("#/components/schemas/Error");
      }
    }
    expect(item?.get?.responses["200"]?.content?.["application/json"]?.schema.$ref).toBe(
      "#/components/schemas/QuotaSet",
    );
    expect(item?.put?.responses["200"]?.content?.["application/json"]?.schema.$ref).toBe(
      "#/components/schemas/QuotaSet",
    );
    expect(item?.put?.requestBody?.content["application/json"]?.schema).toBeDefined();
    expect(item?.put?.responses["415"]).toBeDefined();
    expect(item?.put?.description).toMatch(/admin/);
    expect(item?.delete?.responses["204"]).toBeDefined();
    expect(Object.keys(document.components.schemas.QuotaUpdate?.properties ?? {}).sort()).toEqual([
      "apps",
      "concurrent_invocations",
      "routes_per_app",
    ]);
    // Invocations document the concurrency refusal.
    expect(document.paths["/r/{app}/{route_path}"]?.post?.responses["429"]).toBeDefined();
  });
});
