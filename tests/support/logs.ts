import { createLogger, type Logger } from "../../app/lib/logger.ts";

/** A real logger (with its redaction) writing JSON lines into memory, for asserting on logs. */
export function captureLogs(): { logger: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const logger = createLogger({
    level: "debug",
    format: "json",
    sink: { write: (line) => void lines.push(line), reopen() {}, close: async () => {} },
  });
  return { logger, lines, text: () => lines.join("") };
}
