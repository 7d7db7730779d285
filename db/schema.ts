import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  char,
  datetime,
  foreignKey,
  index,
  int,
  mysqlEnum,
  mysqlTable,
  uniqueIndex,
  varchar,
} from "drizzle-orm/mysql-core";
import { asciiColumn, jsonColumn } from "./columns.ts";

const timestamps = {
  createdAt: datetime("created_at", { mode: "date", fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  updatedAt: datetime("updated_at", { mode: "date", fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
};

export const apps = mysqlTable(
  "apps",
  {
    id: char("id", { length: 32 }).primaryKey(),
    projectId: asciiColumn("project_id", 64).notNull(),
    /** The name tenants use in every call and in public URLs; unique across all projects. */
    name: asciiColumn("name", 160).notNull(),
    /** The function engine's app names are global and at most 30 characters. */
    engineName: asciiColumn("engine_name", 30).notNull(),
    description: varchar("description", { length: 1024 }).notNull(),
    config: jsonColumn<Record<string, string>>("config").notNull(),
    ...timestamps,
  },
  (table) => [
    uniqueIndex("apps_name_uq").on(table.name),
    uniqueIndex("apps_engine_name_uq").on(table.engineName),
    index("apps_project_name_idx").on(table.projectId, table.name),
  ],
);

export const routes = mysqlTable(
  "routes",
  {
    id: char("id", { length: 32 }).primaryKey(),
    appId: char("app_id", { length: 32 }).notNull(),
    projectId: asciiColumn("project_id", 64).notNull(),
    path: asciiColumn("path", 255).notNull(),
    image: varchar("image", { length: 512 }).notNull(),
    type: mysqlEnum("type", ["sync", "async"]).notNull(),
    format: mysqlEnum("format", ["default", "http"]).notNull(),
    memory: int("memory").notNull(),
    timeout: int("timeout").notNull(),
    idleTimeout: int("idle_timeout").notNull(),
    maxConcurrency: int("max_concurrency").notNull(),
    headers: jsonColumn<Record<string, string[]>>("headers").notNull(),
    config: jsonColumn<Record<string, string>>("config").notNull(),
    isPublic: boolean("is_public").notNull(),
    maxBodyBytes: bigint("max_body_bytes", { mode: "number" }),
    forwardAuthHeaders: boolean("forward_auth_headers").notNull().default(false),
    /** Invocations per second per caller (client address if public, project if private); null: server default. */
    rateLimit: int("rate_limit"),
    /** Invocations allowed at once above `rateLimit` before 429; null: server default. */
    rateLimitBurst: int("rate_limit_burst"),
    description: varchar("description", { length: 1024 }).notNull(),
    ...timestamps,
  },
  (table) => [
    uniqueIndex("routes_app_path_uq").on(table.appId, table.path),
    index("routes_project_idx").on(table.projectId),
    foreignKey({ name: "routes_app_fk", columns: [table.appId], foreignColumns: [apps.id] }).onDelete(
      "restrict",
    ),
  ],
);

/**
 * A project's quotas where an admin set them; a missing row or a null column means the
 * configured default, and -1 means unlimited (as in Nova). The row is also the lock that
 * serialises a project's creates, so racing requests cannot overshoot a count quota.
 */
export const projectQuotas = mysqlTable("project_quotas", {
  projectId: asciiColumn("project_id", 64).primaryKey(),
  apps: int("apps"),
  routesPerApp: int("routes_per_app"),
  concurrentInvocations: int("concurrent_invocations"),
  ...timestamps,
});

export type AppRow = typeof apps.$inferSelect;
export type NewAppRow = typeof apps.$inferInsert;
export type RouteRow = typeof routes.$inferSelect;
export type NewRouteRow = typeof routes.$inferInsert;
export type ProjectQuotasRow = typeof projectQuotas.$inferSelect;
