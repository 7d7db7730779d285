import type { LogFields, Logger } from "./logger.ts";

/**
 * A warning that may fire on every request (a dependency that is down) is logged at most once per
 * interval, with how many were left out since, so an outage cannot flood the log.
 */
export function throttledWarning(logger: Logger, message: string, intervalMs: number) {
  let lastAt = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return function warnThrottled(fields: LogFields = {}) {
    const now = performance.now();
    if (now - lastAt < intervalMs) {
      suppressed += 1;
      return;
    }
    logger.warn(message, suppressed > 0 ? { ...fields, suppressed } : fields);
    lastAt = now;
    suppressed = 0;
  };
}
