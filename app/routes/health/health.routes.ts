import { createRoute, z } from "@hono/zod-openapi";
import { dependencyNames, optionalDependencyNames } from "../../services/health/index.ts";

const dependencyCheckSchema = z.object({
  status: z.enum(["ok", "error", "skipped"]),
  critical: z.boolean().describe("Whether this dependency failing makes the service unavailable (503)"),
  latency_ms: z.number().optional(),
  error: z.string().optional().describe("Short reason: timeout, an engine error kind, a MySQL code"),
  message: z.string().optional(),
});

export const readinessSchema = z
  .object({
    status: z.enum(["ok", "degraded", "unavailable", "draining"]),
    checked_at: z.string().describe("When the dependencies were last checked (results are reused briefly)"),
    checks: z.object({
      ...(Object.fromEntries(dependencyNames.map((name) => [name, dependencyCheckSchema])) as Record<
        (typeof dependencyNames)[number],
        typeof dependencyCheckSchema
      >),
      ...(Object.fromEntries(
        optionalDependencyNames.map((name) => [
          name,
          dependencyCheckSchema.optional().describe("Only when configured (`--redis-url`)"),
        ]),
      ) as Record<(typeof optionalDependencyNames)[number], z.ZodOptional<typeof dependencyCheckSchema>>),
    }),
  })
  .openapi("Readiness");

export const healthcheckRoute = createRoute({
  method: "get",
  path: "/healthcheck",
  tags: ["meta"],
  summary: "Health check for load balancers (oslo.middleware convention)",
  description:
    "Plain: `200 OK` while the process serves, `503 DRAINING` once it is shutting down. " +
    "With `detailed=1`: the state and latency of MySQL, Keystone, the function engine and (when configured) Redis as JSON; " +
    "503 when draining or MySQL fails, 200 with status `degraded` when only Keystone, the engine or Redis fails. " +
    "No authentication; results are reused for a few seconds.",
  request: {
    query: z.object({
      detailed: z
        .enum(["1", "0", "true", "false", "yes", "no"])
        .optional()
        .describe("1 for the JSON report of each dependency"),
    }),
  },
  responses: {
    200: {
      description: "Serving (plain: `OK`; detailed: status ok or degraded)",
      content: { "text/plain": { schema: z.string() }, "application/json": { schema: readinessSchema } },
    },
    503: {
      description: "Draining for shutdown, or (detailed) MySQL is failing",
      content: { "text/plain": { schema: z.string() }, "application/json": { schema: readinessSchema } },
    },
  },
});

export type HealthcheckRoute = typeof healthcheckRoute;
