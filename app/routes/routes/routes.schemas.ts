import { z } from "@hono/zod-openapi";
import { wrappedOrBare } from "../../lib/openapi.ts";
import { normaliseHeaders } from "../../services/management/fields.ts";
import { headerLimits, routeLimits } from "../../services/management/limits.ts";
import { normaliseRoutePath } from "../../services/management/route-path.ts";
import { AppParam, ConfigMap, ConfigPatchMap, ProjectParam, pageLinks } from "../apps/apps.schemas.ts";

const pathDescription = `Absolute path below the app, e.g. \`/hello\` or \`/a/b\`: at most ${routeLimits.maxSegments} segments of ${routeLimits.segmentPattern.source} (at most ${routeLimits.segmentMaxLength} characters each, ${routeLimits.pathMaxLength} in all); no \`.\`/\`..\`/empty segments, percent-encoding, queries or patterns. A missing leading slash and one trailing slash are fixed.`;

export const RoutePathInput = z
  .string({ error: "must be a string" })
  .transform((raw, ctx) => {
    const checked = normaliseRoutePath(raw);
    if (checked.ok) return checked.path;
    ctx.addIssue({ code: "custom", message: checked.message });
    return z.NEVER;
  })
  .openapi({ description: pathDescription, example: "/hello" });

const range = (name: keyof typeof numericBounds, description: string) => {
  const { min, max, default: fallback } = numericBounds[name];
  return z
    .number({ error: "must be a number" })
    .int("must be an integer")
    .min(min, `must be between ${min} and ${max}`)
    .max(max, `must be between ${min} and ${max}`)
    .openapi({ description: `${description} (${min}-${max}, default ${fallback})`, example: fallback });
};
const numericBounds = {
  memory: routeLimits.memory,
  timeout: routeLimits.timeout,
  idle_timeout: routeLimits.idleTimeout,
  max_concurrency: routeLimits.maxConcurrency,
};

const Image = z
  .string({ error: "must be a string" })
  .min(1, "must not be empty")
  .max(routeLimits.imageMaxLength, `must be at most ${routeLimits.imageMaxLength} characters`)
  .regex(
    routeLimits.imagePattern,
    "must be a Docker image reference without whitespace, e.g. registry:5000/hello:1.0",
  )
  .openapi({ description: "Docker image, with tag", example: "iron/hello:latest" });

const RouteTypeField = z.enum(["sync", "async"], { error: "must be sync or async" }).openapi({
  description: "`sync` answers with the function's output; `async` queues it and answers 202 (default sync)",
});
const FormatField = z
  .enum(["default", "http"], { error: "must be default or http" })
  .openapi({ description: "`default`: one container per call; `http`: hot functions (default `default`)" });

/** The original's CLI sends `"true"`/`"false"` as strings; answers always carry a JSON boolean. */
export const IsPublicField = z
  .union([z.boolean(), z.enum(["true", "false", "True", "False", "TRUE", "FALSE"])], {
    error: 'must be a boolean or "true"/"false"',
  })
  .transform((value) => (typeof value === "boolean" ? value : value.toLowerCase() === "true"))
  .openapi({ description: "Public routes are invoked without a token at `/r/{app}{path}` (default false)" });

/** Like `is_public`: the original CLI's habit of sending booleans as strings is accepted here too. */
const ForwardAuthHeadersField = IsPublicField.openapi({
  description:
    "When true, invocations pass the client's `Authorization` and `Cookie` headers on to the function (never `X-Auth-Token`) (default false)",
});

const { min: minBody, max: maxBody } = routeLimits.maxBodyBytes;
const MaxBodyBytesField = z
  .number({ error: "must be an integer or null" })
  .int("must be an integer")
  .min(minBody, `must be between ${minBody} and ${maxBody}`)
  .max(maxBody, `must be between ${minBody} and ${maxBody}`)
  .nullable()
  .openapi({
    description: `Largest invocation request body in bytes (${minBody}-${maxBody}); null (default) uses the server's \`--max-invoke-body\``,
    example: 1048576,
  });

/** Null sends a route back to the server's default for its kind of invocation. */
function nullableCount(bounds: { min: number; max: number }, description: string, example: number) {
  const between = `must be between ${bounds.min} and ${bounds.max}`;
  return z
    .number({ error: "must be an integer or null" })
    .int("must be an integer")
    .min(bounds.min, between)
    .max(bounds.max, between)
    .nullable()
    .openapi({ description, example });
}

const RateLimitField = nullableCount(
  routeLimits.rateLimit,
  `Invocations per second per caller (the client address for public invocations, the project for private ones), ${routeLimits.rateLimit.min}-${routeLimits.rateLimit.max}; null (default) uses the server's \`--rate-limit-public\` or \`--rate-limit-private\`. Over the limit, invocations answer 429 with \`Retry-After\``,
  10,
);
const RateLimitBurstField = nullableCount(
  routeLimits.rateLimitBurst,
  `Invocations a caller may send at once above \`rate_limit\`, ${routeLimits.rateLimitBurst.min}-${routeLimits.rateLimitBurst.max}; null (default) uses the server's \`--rate-limit-public-burst\` or \`--rate-limit-private-burst\``,
  20,
);

const Description = z
  .string({ error: "must be a string" })
  .max(routeLimits.descriptionMaxLength, `must be at most ${routeLimits.descriptionMaxLength} characters`);

const headersDescription = `Response headers added by the engine: at most ${headerLimits.maxNames} names (${headerLimits.namePattern.source}, stored in canonical form: \`x-foo\` becomes \`X-Foo\`), each with 1-${headerLimits.maxValuesPerName} printable ASCII values.`;

function checkedHeaders<V extends string[] | null>(value: z.ZodType<V>, description: string) {
  return z
    .record(z.string(), value, { error: "must be an object of string lists" })
    .transform((headers, ctx) => {
      const { headers: canonical, problems } = normaliseHeaders(headers);
      for (const [key, message] of problems) {
        ctx.addIssue({ code: "custom", message, path: key ? [key] : [] });
      }
      return problems.length > 0 ? z.NEVER : canonical;
    })
    .openapi({ description, example: { "Content-Type": ["application/json"] } });
}

const HeaderValues = z.array(z.string({ error: "must be a string" }), { error: "must be a list of strings" });
const Headers = checkedHeaders(HeaderValues, headersDescription);
const HeadersPatch = checkedHeaders(
  HeaderValues.nullable(),
  `${headersDescription} In a PATCH, a header given replaces that header's values and null removes it.`,
);

const common = {
  image: Image,
  type: RouteTypeField,
  format: FormatField,
  memory: range("memory", "Memory limit in MiB"),
  timeout: range("timeout", "Seconds a call may run"),
  idle_timeout: range("idle_timeout", "Seconds an idle hot function (format http) is kept"),
  max_concurrency: range("max_concurrency", "Hot function containers at once"),
  is_public: IsPublicField,
  max_body_bytes: MaxBodyBytesField,
  forward_auth_headers: ForwardAuthHeadersField,
  rate_limit: RateLimitField,
  rate_limit_burst: RateLimitBurstField,
  description: Description.openapi({ description: "Free text (default empty)" }),
};

export const RouteCreateFields = z
  .object({
    path: RoutePathInput,
    image: common.image,
    type: common.type.optional(),
    format: common.format.optional(),
    memory: common.memory.optional(),
    timeout: common.timeout.optional(),
    idle_timeout: common.idle_timeout.optional(),
    max_concurrency: common.max_concurrency.optional(),
    headers: Headers.optional(),
    config: ConfigMap.optional(),
    is_public: common.is_public.optional(),
    max_body_bytes: common.max_body_bytes.optional(),
    forward_auth_headers: common.forward_auth_headers.optional(),
    rate_limit: common.rate_limit.optional(),
    rate_limit_burst: common.rate_limit_burst.optional(),
    description: common.description.optional(),
  })
  .strict()
  .openapi("RouteCreate");

export const RouteCreateBody = wrappedOrBare(
  "route",
  RouteCreateFields,
  'The route, wrapped as `{"route": {...}}` (as the original CLI sends it) or bare.',
);

const immutablePath = z
  .string({ error: "must be a string" })
  .optional()
  .openapi({ description: "Accepted only if it names this route: paths cannot change" });

const updateFields = {
  path: immutablePath,
  image: common.image.optional(),
  type: common.type.optional(),
  format: common.format.optional(),
  memory: common.memory.optional(),
  timeout: common.timeout.optional(),
  idle_timeout: common.idle_timeout.optional(),
  max_concurrency: common.max_concurrency.optional(),
  is_public: common.is_public.optional(),
  max_body_bytes: common.max_body_bytes.optional(),
  forward_auth_headers: common.forward_auth_headers.optional(),
  rate_limit: common.rate_limit.optional(),
  rate_limit_burst: common.rate_limit_burst.optional(),
  description: common.description.optional(),
};

export const RoutePutFields = z
  .object({
    ...updateFields,
    headers: Headers.optional().openapi({ description: "Replaces all headers" }),
    config: ConfigMap.optional().openapi({ description: "Replaces the whole config" }),
  })
  .strict()
  .openapi("RoutePut");

export const RoutePatchFields = z
  .object({ ...updateFields, headers: HeadersPatch.optional(), config: ConfigPatchMap.optional() })
  .strict()
  .openapi("RoutePatch");

export const RoutePutBody = wrappedOrBare(
  "route",
  RoutePutFields,
  'Fields to replace, bare (`{"type": "sync"}`, as the original CLI sends) or wrapped in `{"route": ...}`.',
);
export const RoutePatchBody = wrappedOrBare(
  "route",
  RoutePatchFields,
  'Fields to merge, bare or wrapped in `{"route": ...}`; config keys and headers set to null are deleted.',
);

export const RouteParam = z.string().openapi({
  param: { name: "route", in: "path" },
  description:
    "The route's path without its leading slash; it may span several segments (`a/b` for `/a/b`), sent unencoded as the original CLI does.",
  example: "hello",
});

export const appParams = z.object({ project_id: ProjectParam, app: AppParam });
export const routeParams = z.object({ project_id: ProjectParam, app: AppParam, route: RouteParam });

export const RouteSchema = z
  .object({
    path: z.string(),
    type: z.enum(["sync", "async"]),
    format: z.enum(["default", "http"]),
    image: z.string(),
    is_public: z.boolean(),
    memory: z.number().int(),
    timeout: z.number().int(),
    idle_timeout: z.number().int(),
    max_concurrency: z.number().int(),
    max_body_bytes: z.number().int().nullable().openapi({
      description: "Invocation body limit in bytes; null means the server's `--max-invoke-body`",
    }),
    forward_auth_headers: z.boolean().openapi({
      description: "Whether invocations pass `Authorization` and `Cookie` on to the function",
    }),
    rate_limit: z.number().int().nullable().openapi({
      description:
        "Invocations per second per caller; null means the server's `--rate-limit-public` or `--rate-limit-private`",
    }),
    rate_limit_burst: z.number().int().nullable().openapi({
      description:
        "Invocations a caller may send at once above `rate_limit`; null means the server's default burst",
    }),
    headers: z.record(z.string(), z.array(z.string())),
    config: z.record(z.string(), z.string()),
    description: z.string(),
    invoke_url: z.string().openapi({
      description:
        "Where to call the function: `{base}/r/{app}{path}` if public, else `{base}/v1/r/{project_id}/{app}{path}`",
    }),
    created_at: z.string().openapi({ description: "ISO 8601, UTC" }),
    updated_at: z.string().openapi({ description: "ISO 8601, UTC" }),
  })
  .openapi("Route");

export const RouteEnvelope = z.object({ route: RouteSchema, message: z.string() }).openapi("RouteResponse");

export const RouteList = z.object({ routes: z.array(RouteSchema), ...pageLinks }).openapi("RouteList");
