// Hostile requests for every operation of the app's own OpenAPI document, through app.fetch with a
// real member token: never a 5xx, every error in the one JSON shape, and the database holds
// exactly what the accepted requests created.
import { eq, inArray } from "drizzle-orm";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apps, routes } from "../../db/schema.ts";
import {
  type Cast,
  castFor,
  createAppFor,
  createRouteFor,
  type Harness,
  startHarness,
} from "../support/management.ts";

/** Total requests, spread evenly over the operations. */
const TOTAL_REQUESTS = 10_500;
/** Fixed, so a failure replays exactly; change it locally to explore further. */
const SEED = 20_251_125;
const MAX_STRING = 64 * 1024;

type SchemaObject = {
  $ref?: string;
  anyOf?: SchemaObject[];
  properties?: Record<string, SchemaObject>;
};
type Operation = {
  method: string;
  template: string;
  pathParams: string[];
  queryParams: string[];
  bodyFields: string[] | null;
  wrapper: string | null;
};

let h: Harness;
let tenant: Cast;
let knownApp: string;
const knownRoute = "/known";

beforeAll(async () => {
  h = await startHarness();
  tenant = await castFor(h);
  knownApp = await createAppFor(h, tenant);
  await createRouteFor(h, tenant, knownApp, { path: knownRoute, is_public: true });
});
afterAll(() => h?.close());

async function operationsFromDocument(): Promise<Operation[]> {
  const response = await h.app.fetch(new Request("http://picasso.test/api/openapi.json"));
  expect(response.status).toBe(200);
  const document = (await response.json()) as {
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: { name: string; in: string }[];
          requestBody?: { content: Record<string, { schema: SchemaObject }> };
        }
      >
    >;
    components: { schemas: Record<string, SchemaObject> };
  };
  const resolve = (schema: SchemaObject): SchemaObject =>
    schema.$ref ? resolve(document.components.schemas[schema.$ref.split("/").at(-1) ?? ""] ?? {}) : schema;
  const operations: Operation[] = [];
  for (const [template, methods] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const parameters = operation.parameters ?? [];
      const bodySchema = operation.requestBody?.content["application/json"]?.schema;
      let bodyFields: string[] | null = null;
      let wrapper: string | null = null;
      if (bodySchema) {
        // Bodies are documented as `anyOf: [bare, {wrapper: bare}]`.
        const [bare, wrapped] = bodySchema.anyOf ?? [bodySchema];
        bodyFields = Object.keys(resolve(bare ?? {}).properties ?? {});
        wrapper = Object.keys(resolve(wrapped ?? {}).properties ?? {})[0] ?? null;
      }
      operations.push({
        method: method.toUpperCase(),
        template,
        pathParams: parameters.filter((p) => p.in === "path").map((p) => p.name),
        queryParams: parameters.filter((p) => p.in === "query").map((p) => p.name),
        bodyFields,
        wrapper,
      });
    }
  }
  return operations;
}

const hostileConstants = [
  "' OR '1'='1",
  "'; DROP TABLE apps; --",
  '"; DELETE FROM routes; --',
  "1 UNION SELECT * FROM apps",
  "x` OR 1=1 #",
  "$(id)",
  "`id`",
  "; rm -rf / #",
  "| cat /etc/passwd",
  "&& curl http://127.0.0.1:1/",
  "../",
  "../../etc/passwd",
  "..",
  ".",
  "..%2f..%2fetc%2fpasswd",
  "%2e%2e%2f",
  "%252e%252e%252f",
  "%00",
  "\u0000",
  "%ff%fe",
  "%c0%af",
  "%",
  "%zz",
  "",
  " ",
  "\t\r\n",
  "null",
  "-1",
  "0",
  "1e309",
  "NaN",
  "{}",
  "\\",
  "/",
  "//",
  "?x=1",
  "#frag",
  ";",
  "*",
  ":",
  "\u202e",
  "𝕏",
  "\ud800",
  "é",
];

const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...hostileConstants) },
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  { weight: 3, arbitrary: fc.stringMatching(/^[a-z0-9_-]{1,70}$/) },
  { weight: 1, arbitrary: fc.integer({ min: 65, max: MAX_STRING }).map((n) => "a".repeat(n)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.stringMatching(/^[a-z0-9]{1,8}$/), fc.constantFrom(...hostileConstants))
      .map(([valid, hostile]) => `${valid}${hostile}`),
  },
);

/** Path segments stay below what a real server's 16 KiB header limit lets through. */
const segmentString = hostileString.map((value) => value.slice(0, 4096));

function encodeAll(value: string): string {
  return [...Buffer.from(value, "utf8")].map((byte) => `%${byte.toString(16).padStart(2, "0")}`).join("");
}
function safeEncode(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return value; // a lone surrogate: sent as the URL parser makes of it
  }
}
const encodings: ((value: string) => string)[] = [
  safeEncode,
  (value) => value,
  (value) => safeEncode(safeEncode(value)),
  encodeAll,
  (value) => value.replaceAll("/", "%2F"),
];

const fieldValue = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom("true", "false", "sync", "async", "default", "http", "hello", "/p", 128, 30, 0, -1),
  fc.dictionary(hostileString, fc.oneof(hostileString, fc.integer(), fc.constant(null)), { maxKeys: 4 }),
  fc.array(hostileString, { maxLength: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
);

const contentTypes = fc.constantFrom(
  "application/json",
  "application/json",
  "application/json",
  "application/json",
  "application/json",
  "application/json; charset=utf-8",
  "APPLICATION/JSON",
  "application/json; charset=latin1",
  "application/jsonx",
  "application/merge-patch+json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "",
  null,
);

const deepJson = fc
  .integer({ min: 500, max: 2000 })
  .chain((depth) =>
    fc.constantFrom(
      `${"[".repeat(depth)}${"]".repeat(depth)}`,
      `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`,
      `{"app":${'{"config":'.repeat(depth)}{}${"}".repeat(depth)}}`,
      `{"route":{"path":"/x","image":"hello","config":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}}`,
    ),
  );

const invalidUtf8 = fc.constantFrom(
  Uint8Array.from([0xff, 0xfe, 0xfd]),
  Uint8Array.from([0x7b, 0x22, 0x61, 0x70, 0x70, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d]),
  Uint8Array.from([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d]),
  Uint8Array.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]),
  Uint8Array.from([0x80]),
);

function bodyFor(operation: Operation): fc.Arbitrary<string | Uint8Array | undefined> {
  const invalidJson = fc.oneof(
    fc.constantFrom("{", '{"app":', "[1,2", "nul", "{'a':1}", '{"a":1,}', "\u0000", "{}{}", '"\\ud800"'),
    fc.string({ maxLength: 200 }),
  );
  if (!operation.bodyFields) {
    return fc.oneof(
      fc.constant(undefined),
      invalidJson,
      invalidUtf8,
      fc.string({ unit: "binary", maxLength: 300 }),
    );
  }
  const fields = operation.bodyFields;
  const object = fc
    .tuple(
      fc.subarray(fields),
      fc.array(fieldValue, { minLength: fields.length, maxLength: fields.length }),
      fc.dictionary(hostileString, fieldValue, { maxKeys: 2 }),
      fc.boolean(),
    )
    .map(([chosen, values, extra, wrap]) => {
      const bare: Record<string, unknown> = {};
      chosen.forEach((field, index) => {
        bare[field] = values[index];
      });
      Object.assign(bare, extra);
      return JSON.stringify(wrap && operation.wrapper ? { [operation.wrapper]: bare } : bare);
    });
  const plausible = fc
    .record({
      name: fc.stringMatching(/^[a-z0-9_-]{1,64}$/),
      path: fc.stringMatching(/^(\/[A-Za-z0-9._~-]{1,12}){1,3}\/?$/),
      image: fc.constantFrom("hello", "picasso/hello:0.1", "echo"),
      is_public: fc.constantFrom(true, false, "true", "false"),
      config: fc.dictionary(
        fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/),
        fc.oneof(fc.stringMatching(/^[ -~]{1,20}$/), hostileString),
        { maxKeys: 3 },
      ),
    })
    .map((value) => {
      // Only the operation's own fields, so that many of these are accepted.
      const bare = Object.fromEntries(Object.entries(value).filter(([field]) => fields.includes(field)));
      return JSON.stringify(operation.wrapper ? { [operation.wrapper]: bare } : bare);
    });
  return fc.oneof(
    { weight: 6, arbitrary: object },
    { weight: 6, arbitrary: plausible },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: invalidJson },
    { weight: 1, arbitrary: deepJson },
    { weight: 1, arbitrary: invalidUtf8 },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 1024, max: MAX_STRING })
        .map((n) =>
          JSON.stringify({ [operation.wrapper ?? "x"]: { name: "n".repeat(n), description: "d".repeat(n) } }),
        ),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

type Sample = {
  url: string;
  init: { method: string; headers: Record<string, string>; body: string | Uint8Array | undefined };
};

function requestsFor(operation: Operation): fc.Arbitrary<Sample> {
  const invocation = operation.template.includes("/r/");
  const pathValue = (name: string): fc.Arbitrary<string> => {
    const valid =
      name === "project_id"
        ? fc.constant(tenant.projectId)
        : name === "app"
          ? fc.constantFrom(knownApp, LATEST_APP)
          : name === "route"
            ? fc.constantFrom(knownRoute.slice(1), LATEST_ROUTE)
            : fc.constant(`missing/${knownRoute.slice(1)}`); // invocations: never run a function by accident
    const encoded = fc
      .tuple(segmentString, fc.integer({ min: 0, max: encodings.length - 1 }))
      .map(([value, mode]) => (encodings[mode] ?? safeEncode)(value));
    return fc.oneof({ weight: 3, arbitrary: valid }, { weight: 2, arbitrary: encoded });
  };
  const query = fc.array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(...operation.queryParams, "limit", "marker"),
        hostileString.map((v) => v.slice(0, 64)),
      ),
      fc.oneof(
        segmentString,
        fc.integer().map(String),
        fc.constantFrom("0", "-1", "1001", "1e3", "0x10", ""),
      ),
    ),
    { maxLength: 3 },
  );
  const hasBody = operation.method !== "GET" && operation.method !== "HEAD";
  return fc
    .record({
      params: fc.tuple(...operation.pathParams.map(pathValue), fc.constant("")),
      query,
      body: hasBody ? bodyFor(operation) : fc.constant(undefined),
      contentType: contentTypes,
      invocationBody: fc.string({ unit: "binary", maxLength: 200 }),
    })
    .map(({ params, query: pairs, body, contentType, invocationBody }) => {
      let path = operation.template;
      operation.pathParams.forEach((name, index) => {
        path = path.replace(`{${name}}`, params[index] ?? "");
      });
      const search = pairs.map(([key, value]) => `${safeEncode(key)}=${safeEncode(value)}`).join("&");
      const headers: Record<string, string> = { "X-Auth-Token": tenant.member };
      if (contentType !== null && hasBody) headers["Content-Type"] = contentType;
      const sentBody = invocation && hasBody && body === undefined ? invocationBody : body;
      return {
        url: `http://picasso.test${path}${search ? `?${search}` : ""}`,
        init: { method: operation.method, headers, body: sentBody },
      };
    });
}

/** Apps and routes of the tenant, as the accepted requests say they should be. */
const model = new Map<string, Set<string>>();

/**
 * Placeholders resolved when the request is sent, to the newest app and route the fuzzer created
 * (requests are generated up front), so updates and deletes meet what creates made.
 */
const LATEST_APP = "LATEST-APP-PLACEHOLDER";
const LATEST_ROUTE = "LATEST-ROUTE-PLACEHOLDER";

function resolvePlaceholders(url: string): string {
  const latestApp = [...model.keys()].at(-1) ?? knownApp;
  const latestRoute = [...(model.get(latestApp) ?? [])].at(-1) ?? knownRoute;
  return url.replace(LATEST_APP, latestApp).replace(LATEST_ROUTE, latestRoute.slice(1));
}

function decoded(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function routePathFrom(segments: string[]): string | undefined {
  const parts = segments.map(decoded);
  if (parts.some((part) => part === undefined)) return undefined;
  let path = `/${parts.join("/")}`;
  if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
  return path;
}

/** Applies an accepted create or delete to the model; returns a reason when it does not fit. */
function record(operation: Operation, url: URL, body: unknown): string | undefined {
  const segments = url.pathname.split("/").slice(1); // v1, project, apps, app, routes, ...route
  const app = segments[3] === undefined ? undefined : decoded(segments[3]);
  const result = body as { app?: { name: string }; route?: { path: string } };
  if (operation.template === "/v1/{project_id}/apps" && operation.method === "POST") {
    if (!result.app || model.has(result.app.name)) return "created an app the model has";
    model.set(result.app.name, new Set());
  } else if (operation.template === "/v1/{project_id}/apps/{app}" && operation.method === "DELETE") {
    if (app === undefined || !model.has(app) || model.get(app)?.size) return `deleted app ${app}`;
    model.delete(app);
  } else if (operation.template.endsWith("/routes") && operation.method === "POST") {
    const set = app === undefined ? undefined : model.get(app);
    if (!set || !result.route || set.has(result.route.path)) return `created a route of ${app}`;
    set.add(result.route.path);
  } else if (operation.template.endsWith("/routes/{route}") && operation.method === "DELETE") {
    const set = app === undefined ? undefined : model.get(app);
    const path = routePathFrom(segments.slice(5));
    if (!set || path === undefined || !set.delete(path)) return `deleted route ${app} ${path}`;
  }
  return undefined;
}

async function databaseState(): Promise<Map<string, Set<string>>> {
  const db = h.database.db;
  const appRows = await db
    .select({ id: apps.id, name: apps.name })
    .from(apps)
    .where(eq(apps.projectId, tenant.projectId));
  const state = new Map(appRows.map((row) => [row.name, new Set<string>()]));
  if (appRows.length === 0) return state;
  const routeRows = await db
    .select({ app: apps.name, path: routes.path })
    .from(routes)
    .innerJoin(apps, eq(apps.id, routes.appId))
    .where(
      inArray(
        routes.appId,
        appRows.map((row) => row.id),
      ),
    );
  for (const row of routeRows) state.get(row.app)?.add(row.path);
  return state;
}

const sorted = (state: Map<string, Set<string>>) =>
  [...state.entries()]
    .map(([app, paths]) => [app, [...paths].sort()] as const)
    .sort(([x], [y]) => (x < y ? -1 : 1));

describe("fuzzing every operation of the OpenAPI document", () => {
  it("never answers 5xx, always answers errors as JSON, and changes exactly what it accepted", async () => {
    const operations = await operationsFromDocument();
    expect(operations.length).toBeGreaterThan(20);
    model.set(knownApp, new Set([knownRoute]));
    const perOperation = Math.ceil(TOTAL_REQUESTS / operations.length);
    const batches = operations.map((operation, index) =>
      fc.sample(requestsFor(operation), { numRuns: perOperation, seed: SEED + index }),
    );

    const failures: string[] = [];
    const accepted = { creates: 0, deletes: 0 };
    const statuses = new Map<number, number>();
    let sent = 0;
    for (let round = 0; round < perOperation; round++) {
      for (const [index, operation] of operations.entries()) {
        const sample = batches[index]?.[round];
        if (!sample) continue;
        let request: Request;
        try {
          request = new Request(resolvePlaceholders(sample.url), sample.init as RequestInit);
        } catch {
          continue; // not expressible as an HTTP request at all (e.g. a header with a newline)
        }
        const label = `${sample.init.method} ${request.url.slice(0, 300)} body=${String(sample.init.body).slice(0, 200)}`;
        const response = await h.app.fetch(request);
        sent++;
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const text = await response.text();
        if (response.status >= 500) {
          failures.push(`${response.status} ${label}: ${text.slice(0, 300)}`);
          continue;
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        if (response.status >= 300) {
          const error = (parsed as { error?: { message?: unknown; code?: unknown } } | undefined)?.error;
          const shaped =
            parsed !== null &&
            typeof parsed === "object" &&
            Object.keys(parsed).join() === "error" &&
            typeof error?.message === "string" &&
            typeof error.code === "string";
          if (!shaped) failures.push(`shape ${response.status} ${label}: ${text.slice(0, 300)}`);
          continue;
        }
        const mismatch = record(operation, new URL(request.url), parsed);
        if (mismatch) failures.push(`model: ${mismatch} after ${label}`);
        if (operation.method === "POST" && !operation.template.includes("/r/")) accepted.creates++;
        if (operation.method === "DELETE" && !operation.template.includes("/r/")) accepted.deletes++;
      }
    }
    const routeCount = [...model.values()].reduce((sum, paths) => sum + paths.size, 0);
    console.info(
      `fuzz: ${sent} requests over ${operations.length} operations; statuses ${JSON.stringify(Object.fromEntries(statuses))}; ${accepted.creates} creates and ${accepted.deletes} deletes accepted; the tenant ends with ${model.size} apps and ${routeCount} routes`,
    );
    expect(failures.slice(0, 20)).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(10_000);
    // The valid share is large enough to check that the database follows what was accepted.
    expect(accepted.creates).toBeGreaterThan(30);
    expect(accepted.deletes).toBeGreaterThan(20);
    expect(sorted(await databaseState())).toEqual(sorted(model));
  }, 240_000);
});
