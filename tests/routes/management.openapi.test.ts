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
});
