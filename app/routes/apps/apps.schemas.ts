import { z } from "@hono/zod-openapi";
import { wrappedOrBare } from "../../lib/openapi.ts";
import { configProblems } from "../../services/management/fields.ts";
import {
  appLimits,
  configLimits,
  projectIdPattern,
  storedAppNamePattern,
} from "../../services/management/limits.ts";

function addProblems(problems: [string, string][], ctx: z.RefinementCtx) {
  for (const [key, message] of problems) {
    ctx.addIssue({ code: "custom", message, path: key ? [key] : [] });
  }
}

const configDescription = `String map passed to functions as environment variables. At most ${configLimits.maxKeys} keys matching ${configLimits.keyPattern.source} (at most ${configLimits.keyMaxLength} characters), values of 1 to ${configLimits.valueMaxLength} characters, ${configLimits.maxTotalLength} characters in all.`;

export const ConfigMap = z
  .record(z.string(), z.string({ error: "must be a string" }), { error: "must be an object of strings" })
  .superRefine((config, ctx) => addProblems(configProblems(config), ctx))
  .openapi({ description: configDescription, example: { GREETING: "hello" } });

/** PATCH config: a value null deletes the key. */
export const ConfigPatchMap = z
  .record(z.string(), z.string({ error: "must be a string or null" }).nullable(), {
    error: "must be an object of strings or nulls",
  })
  .superRefine((config, ctx) => addProblems(configProblems(config), ctx))
  .openapi({ description: `${configDescription} In a PATCH, null deletes a key.` });

const description = z
  .string({ error: "must be a string" })
  .max(appLimits.descriptionMaxLength, `must be at most ${appLimits.descriptionMaxLength} characters`);

export const AppNameInput = z
  .string({ error: "must be a string" })
  .min(1, "must not be empty")
  .max(appLimits.nameMaxLength, `must be at most ${appLimits.nameMaxLength} characters`)
  .regex(appLimits.namePattern, `must match ${appLimits.namePattern.source}`);

export const AppCreateFields = z
  .object({
    name: AppNameInput.openapi({
      description: `Chosen name (${appLimits.namePattern.source}, 1-${appLimits.nameMaxLength} characters). The app is stored and addressed as \`{name}-{project_id}\`, the name the response returns.`,
      example: "hello",
    }),
    config: ConfigMap.optional(),
    description: description.optional().openapi({ description: "Default: `App for project {project_id}`" }),
  })
  .strict()
  .openapi("AppCreate");

export const AppCreateBody = wrappedOrBare(
  "app",
  AppCreateFields,
  'The app, wrapped as `{"app": {...}}` (as the original and its CLI send it) or bare.',
);

const immutableName = z
  .string({ error: "must be a string" })
  .optional()
  .openapi({ description: "Accepted only if equal to the app's name: names cannot change" });

export const AppPutFields = z
  .object({
    name: immutableName,
    config: ConfigMap.optional().openapi({ description: "Replaces the whole config" }),
    description: description.optional(),
  })
  .strict()
  .openapi("AppPut");

export const AppPatchFields = z
  .object({
    name: immutableName,
    config: ConfigPatchMap.optional(),
    description: description.optional(),
  })
  .strict()
  .openapi("AppPatch");

export const AppPutBody = wrappedOrBare(
  "app",
  AppPutFields,
  'Fields to replace, bare (`{"config": {...}}`, as the original CLI sends) or wrapped in `{"app": ...}`.',
);
export const AppPatchBody = wrappedOrBare(
  "app",
  AppPatchFields,
  'Fields to merge, bare or wrapped in `{"app": ...}`; config keys set to null are deleted.',
);

export const ProjectParam = z
  .string()
  .regex(projectIdPattern, `must match ${projectIdPattern.source}`)
  .openapi({
    param: { name: "project_id", in: "path" },
    description: "Keystone project id",
    example: "a1b2c3d4e5f60718293a4b5c6d7e8f90",
  });

export const AppParam = z
  .string()
  .regex(storedAppNamePattern, `must match ${storedAppNamePattern.source}`)
  .openapi({
    param: { name: "app", in: "path" },
    description: "App name as returned by create: `{name}-{project_id}`",
    example: "hello-a1b2c3d4e5f60718293a4b5c6d7e8f90",
  });

export const AppSchema = z
  .object({
    id: z.string().openapi({ description: "Random id (32 hex digits)" }),
    name: z.string().openapi({ description: "`{name}-{project_id}`: used in every call and in public URLs" }),
    project_id: z.string(),
    description: z.string(),
    config: z.record(z.string(), z.string()),
    created_at: z.string().openapi({ description: "ISO 8601, UTC", example: "2024-05-01T12:00:00.000Z" }),
    updated_at: z.string().openapi({ description: "ISO 8601, UTC", example: "2024-05-01T12:00:00.000Z" }),
  })
  .openapi("App");

export const AppEnvelope = z.object({ app: AppSchema, message: z.string() }).openapi("AppResponse");

/** Every paginated list carries these beside its items. */
export const pageLinks = {
  message: z.string(),
  next_marker: z
    .string()
    .nullable()
    .openapi({ description: "Pass as `marker` for the next page; null on the last page" }),
  next: z.string().nullable().openapi({ description: "URL of the next page; null on the last page" }),
};

export const AppList = z.object({ apps: z.array(AppSchema), ...pageLinks }).openapi("AppList");

export const MessageSchema = z.object({ message: z.string() }).openapi("Message");
