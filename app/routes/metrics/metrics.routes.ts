import { createRoute, z } from "@hono/zod-openapi";

export const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["meta"],
  summary: "Prometheus metrics",
  description:
    "Prometheus text exposition format. Unauthenticated, like most OpenStack exporters: restrict it " +
    "at the load balancer or firewall, or turn it off with `--metrics off`.",
  responses: {
    200: {
      description: "Metrics in Prometheus text format 0.0.4",
      content: { "text/plain": { schema: z.string() } },
    },
  },
});

export type MetricsRoute = typeof metricsRoute;
