import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../types.ts";
import { ApiError } from "./errors.ts";

type Issue = { path: PropertyKey[]; message: string };

/** `app.name: must match ^[a-z0-9_-]+$`: clients see which field was wrong. */
export function describeIssues(target: string, issues: readonly Issue[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => {
      const field = issue.path.map(String).join(".");
      return field ? `${field}: ${issue.message}` : `${target}: ${issue.message}`;
    })
    .join("; ");
}

/** One router factory, so every resource validates with the same hook and error shape. */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    strict: false,
    defaultHook: (result) => {
      if (!result.success) {
        throw new ApiError(
          "validation_failed",
          `Invalid ${result.target}: ${describeIssues(result.target, result.error.issues)}`,
        );
      }
    },
  });
}

export type AppRouter = ReturnType<typeof createRouter>;
