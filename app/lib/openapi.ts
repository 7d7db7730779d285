import { type RouteConfig, type RouteHandler, z } from "@hono/zod-openapi";
import type { AppEnv } from "../types.ts";
import type { AppRouter } from "./create-router.ts";
import { type ErrorCode, errorStatuses } from "./errors.ts";

/** Keystone tokens travel in `X-Auth-Token`; every management route names this scheme. */
export const keystoneSecurityScheme = "keystoneToken";
export const keystoneSecurity = [{ [keystoneSecurityScheme]: [] }];

export const ErrorSchema = z
  .object({
    error: z.object({
      message: z
        .string()
        .openapi({ description: "What went wrong, naming the field when input was refused" }),
      code: z.enum(Object.keys(errorStatuses) as [ErrorCode, ...ErrorCode[]]),
    }),
  })
  .openapi("Error");

const errorDescriptions: Partial<Record<number, string>> = {
  400: "Invalid input (the message names the field) or malformed JSON",
  401: "Missing, invalid or expired token",
  403: "Token of another project, too weak a role, or the operation is refused",
  404: "No such resource in this project",
  409: "Already exists (also the loser of two simultaneous creates)",
  413: "Request body too large",
  415: "The body is not application/json",
  502: "The function engine refused or failed the change (its message is passed on); nothing was changed",
  503: "The function engine or Keystone is unreachable; nothing was changed",
  504: "The function engine did not answer in time; nothing was changed",
};

/** The error responses of an operation, all with the one error body. */
export function errorResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: errorDescriptions[status] ?? "Error",
        content: { "application/json": { schema: ErrorSchema } },
      },
    ]),
  );
}

export const readErrors = [400, 401, 403, 404] as const;
export const writeErrors = [400, 401, 403, 404, 413, 415, 502, 503, 504] as const;

/**
 * Update bodies may come wrapped as the engine and the original's create spell them
 * (`{"app": {...}}`) or bare as the original CLI sends updates (`{"config": {...}}`).
 */
export function unwrapKey(key: string) {
  return (value: unknown) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      const keys = Object.keys(value);
      const inner = (value as Record<string, unknown>)[key];
      if (
        keys.length === 1 &&
        keys[0] === key &&
        inner &&
        typeof inner === "object" &&
        !Array.isArray(inner)
      ) {
        return inner;
      }
    }
    return value;
  };
}

export const PageQuery = z.object({
  limit: z.coerce
    .number({ error: "must be a number" })
    .int("must be an integer")
    .min(1, "must be at least 1")
    .optional()
    .openapi({ description: "Page size (default 100, at most 1000)", example: 100 }),
  // Names and paths are ASCII columns, which MySQL cannot compare with other characters.
  marker: z
    .string()
    .max(255, "must be at most 255 characters")
    .regex(/^[\x20-\x7e]*$/, "must be printable ASCII, as names and paths are")
    .optional()
    .openapi({
      description: "Start after this name (apps) or path (routes): the previous page's `next_marker`",
    }),
});

/** Request body schemas that validate one way and are documented another (see wrappedOrBare). */
const documentedBodies = new WeakMap<z.ZodType, z.ZodType>();

/**
 * A body accepted bare or wrapped in `{key: {...}}`: validated by unwrapping first (so errors name
 * the field itself), documented as the union of both forms.
 */
export function wrappedOrBare<T extends z.ZodObject>(key: string, fields: T, description: string) {
  const validated = z.preprocess(unwrapKey(key), fields);
  documentedBodies.set(
    validated,
    z.union([fields, z.object({ [key]: fields }).strict()]).openapi({ description }),
  );
  return validated;
}

/** `{route}` parameters span slashes: Hono matches them with a regex, the document shows `{route}`. */
export const routingPath = (path: string) => path.replace("/{route}", "/{route{.+}}");

function documented(route: RouteConfig): RouteConfig {
  const { middleware: _middleware, ...doc } = route;
  const body = doc.request?.body;
  const media = body?.content["application/json"];
  const schema = media && "schema" in media ? media.schema : undefined;
  const documentedSchema = schema instanceof z.ZodType ? documentedBodies.get(schema) : undefined;
  if (!body || !documentedSchema) return doc;
  return {
    ...doc,
    request: {
      ...doc.request,
      body: { ...body, content: { "application/json": { schema: documentedSchema } } },
    },
  };
}

/**
 * Registers an operation: the OpenAPI document gets its documented form, Hono the route that
 * validates and matches (both from one createRoute definition).
 */
export function registerOperation<R extends RouteConfig>(
  app: AppRouter,
  route: R,
  handler: RouteHandler<R, AppEnv>,
): void {
  app.openAPIRegistry.registerPath(documented(route));
  app.openapi({ ...route, path: routingPath(route.path), hide: true }, handler as never);
}
