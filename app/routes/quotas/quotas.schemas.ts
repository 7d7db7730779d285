import { z } from "@hono/zod-openapi";
import { wrappedOrBare } from "../../lib/openapi.ts";
import { quotaBounds, quotaNames } from "../../services/quotas/limits.ts";

const limitDescription = `${quotaBounds.min} means unlimited, 0 allows nothing`;

const QuotaValue = z
  .number({ error: `must be an integer from ${quotaBounds.min} to ${quotaBounds.max}, or null` })
  .int(`must be an integer from ${quotaBounds.min} to ${quotaBounds.max}, or null`)
  .min(quotaBounds.min, `must be an integer from ${quotaBounds.min} to ${quotaBounds.max}, or null`)
  .max(quotaBounds.max, `must be an integer from ${quotaBounds.min} to ${quotaBounds.max}, or null`)
  .nullable()
  .optional();

export const QuotaUpdateFields = z
  .object({
    apps: QuotaValue.openapi({ description: `Apps the project may have (${limitDescription})`, example: 20 }),
    routes_per_app: QuotaValue.openapi({
      description: `Routes each of its apps may have (${limitDescription})`,
    }),
    concurrent_invocations: QuotaValue.openapi({
      description: `Invocations of its routes, public and private, running at once (${limitDescription})`,
    }),
  })
  .strict()
  .refine((fields) => Object.keys(fields).length > 0, {
    message: `name at least one of ${quotaNames.join(", ")}`,
  })
  .openapi("QuotaUpdate");

export const QuotaUpdateBody = wrappedOrBare(
  "quota_set",
  QuotaUpdateFields,
  'Quotas to change, wrapped as `{"quota_set": {...}}` (as Nova takes them) or bare. A quota not given stays as it is; null puts it back to the configured default.',
);

const Usage = (name: string, inUse: string) =>
  z
    .object({
      limit: z
        .number()
        .int()
        .openapi({ description: `The limit in force (${limitDescription})` }),
      in_use: z.number().int().openapi({ description: inUse }),
    })
    .openapi({ description: `The ${name} quota` });

export const QuotaSetSchema = z
  .object({
    quota_set: z.object({
      project_id: z.string(),
      apps: Usage("apps", "Apps the project has"),
      routes_per_app: Usage("routes_per_app", "Routes of the project's app with the most routes"),
      concurrent_invocations: Usage(
        "concurrent_invocations",
        "Invocations of the project's routes running now (on every instance sharing the counter)",
      ),
    }),
  })
  .openapi("QuotaSet");
