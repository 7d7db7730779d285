import type { LogFields, Logger } from "../../app/lib/logger.ts";

export type LogEntry = { level: string; message: string; fields: LogFields };

/** A logger that keeps every entry, with child fields merged, for assertions on what was logged. */
export function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const make = (bound: LogFields): Logger => {
    const at =
      (level: string) =>
      (message: string, fields: LogFields = {}) =>
        entries.push({ level, message, fields: { ...bound, ...fields } });
    return {
      trace: at("trace"),
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      error: at("error"),
      child: (fields) => make({ ...bound, ...fields }),
    };
  };
  return Object.assign(make({}), { entries });
}
