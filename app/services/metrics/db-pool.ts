import type { Pool } from "mysql2/promise";
import { Gauge } from "prom-client";
import type { Metrics } from "./index.ts";

export type PoolConnectionCounts = { in_use: number; idle: number; queued: number };

/**
 * mysql2 has no public API for its pool's occupancy; these queues are the pool's own bookkeeping
 * (stable across mysql2 3.x). Read defensively: a changed internal reads as 0, never a crash.
 */
type PoolInternals = {
  _allConnections?: { length: number };
  _freeConnections?: { length: number };
  _connectionQueue?: { length: number };
};

export function poolConnectionCounts(pool: Pool): PoolConnectionCounts {
  const core = pool.pool as unknown as PoolInternals;
  const all = core._allConnections?.length ?? 0;
  const idle = core._freeConnections?.length ?? 0;
  return { in_use: Math.max(all - idle, 0), idle, queued: core._connectionQueue?.length ?? 0 };
}

/** picasso_db_pool_connections{state}: read from the pool at each scrape, nothing runs between. */
export function observeDatabasePool(metrics: Metrics, pool: Pool): void {
  new Gauge({
    name: "picasso_db_pool_connections",
    help: "MySQL pool connections: in_use (checked out, including connecting), idle, and queued (requests waiting for one).",
    labelNames: ["state"] as const,
    registers: [metrics.registry],
    collect() {
      const counts = poolConnectionCounts(pool);
      this.set({ state: "in_use" }, counts.in_use);
      this.set({ state: "idle" }, counts.idle);
      this.set({ state: "queued" }, counts.queued);
    },
  });
}
