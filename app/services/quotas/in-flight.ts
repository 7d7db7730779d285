import { unlimited } from "./limits.ts";

/** Gives a slot back; calling it again does nothing. */
export type ReleaseSlot = () => void;

/**
 * Counts a project's invocations in flight. One process counts in memory; instances that must
 * enforce one limit together count in Redis (`createRedisInFlightCounter`).
 */
export interface InFlightCounter {
  /**
   * Takes a slot when fewer than `limit` are in use (-1: no limit, but the slot is still counted)
   * and returns its release; null when the project is at its limit. `leaseMs` bounds how long a
   * slot may stay taken if its holder dies without releasing it (shared counters only). Counters
   * in memory answer at once, without a promise (the invocation path takes one per call).
   */
  acquire(
    projectId: string,
    limit: number,
    leaseMs: number,
  ): ReleaseSlot | null | Promise<ReleaseSlot | null>;
  /** Slots the project holds now. */
  inUse(projectId: string): Promise<number>;
}

/** One process: a count per project, dropped when it falls back to zero so idle projects cost nothing. */
export function createMemoryInFlightCounter(): InFlightCounter {
  const counts = new Map<string, number>();
  return {
    acquire(projectId, limit) {
      const used = counts.get(projectId) ?? 0;
      if (limit !== unlimited && used >= limit) return null;
      counts.set(projectId, used + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const now = (counts.get(projectId) ?? 1) - 1;
        if (now <= 0) counts.delete(projectId);
        else counts.set(projectId, now);
      };
    },
    async inUse(projectId) {
      return counts.get(projectId) ?? 0;
    },
  };
}
