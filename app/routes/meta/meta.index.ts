import { createRoute, z } from "@hono/zod-openapi";
import { baseUrl } from "../../lib/base-url.ts";
import type { AppRouter } from "../../lib/create-router.ts";

const versionsRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["meta"],
  summary: "API versions (OpenStack version discovery)",
  responses: {
    200: {
      description: "Supported API versions",
      content: {
        "application/json": {
          schema: z.object({
            versions: z.array(
              z.object({
                id: z.string(),
                status: z.string(),
                links: z.array(z.object({ rel: z.string(), href: z.string() })),
              }),
            ),
          }),
        },
      },
    },
  },
});

export function registerMeta(app: AppRouter) {
  app.openapi(versionsRoute, (c) => {
    const base = baseUrl(c);
    return c.json(
      { versions: [{ id: "v1", status: "CURRENT", links: [{ rel: "self", href: `${base}/v1/` }] }] },
      200,
    );
  });
}
