import { createWriteStream, type WriteStream } from "node:fs";
import { type ConsolaInstance, createConsola, type LogObject } from "consola";
import type { LogLevel } from "../config.ts";
import { withoutCredentials } from "./redact.ts";

export type LogFields = Record<string, unknown>;

/** Structured logger: a message plus fields. `child` adds fields (e.g. the request id) cheaply. */
export interface Logger {
  trace(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const consolaLevels: Record<LogLevel, number> = {
  trace: 5,
  debug: 4,
  info: 3,
  warning: 1,
  error: 0,
  critical: 0,
};

const levelNames: Record<string, string> = {
  trace: "TRACE",
  debug: "DEBUG",
  info: "INFO",
  log: "INFO",
  success: "INFO",
  warn: "WARNING",
  error: "ERROR",
  fatal: "CRITICAL",
};

/** Field names whose values must never reach a log, whatever a caller passes. */
const secretField = /token|password|secret|authorization|cookie|credential/i;

export function redactFields(fields: LogFields): LogFields {
  return redactObject(fields, 0);
}

function redactObject(fields: LogFields, depth: number): LogFields {
  const clean: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    clean[key] = secretField.test(key) ? "***" : redactValue(value, depth + 1);
  }
  return clean;
}

/** Nested fields too, and credentials inside URLs in any string (a DSN in an error message). */
function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === "string") return withoutCredentials(value);
  if (value instanceof Error) return value;
  if (depth > 5 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  return redactObject(value as LogFields, depth);
}

/** JSON.stringify drops an Error's message and stack; keep them, with credentials removed. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: withoutCredentials(value.message), stack: errorStack(value) };
  }
  return value;
}

const errorStack = (error: Error) => withoutCredentials(error.stack ?? error.message);

function formatValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(errorStack(value));
  if (typeof value === "string") return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

export type LogSink = { write(line: string): void; reopen(): void; close(): Promise<void> };

export function createLogSink(file?: string): LogSink {
  if (!file) {
    return { write: (line) => process.stderr.write(line), reopen: () => {}, close: async () => {} };
  }
  let stream: WriteStream = createWriteStream(file, { flags: "a" });
  return {
    write: (line) => stream.write(line),
    // logrotate moves the file and sends SIGHUP: keep writing to the new file at the old path.
    reopen: () => {
      const old = stream;
      stream = createWriteStream(file, { flags: "a" });
      old.end();
    },
    close: () => new Promise((resolve) => stream.end(resolve)),
  };
}

export type LoggerOptions = { level: LogLevel; format: "text" | "json"; sink: LogSink };

export function createLogger(options: LoggerOptions): Logger {
  const reporter = {
    log(logObj: LogObject) {
      const [message, fields] = logObj.args as [string, LogFields | undefined];
      const level = levelNames[logObj.type] ?? "INFO";
      const clean = fields ? redactFields(fields) : {};
      const time = logObj.date.toISOString();
      if (options.format === "json") {
        options.sink.write(`${JSON.stringify({ time, level, message, ...clean }, jsonReplacer)}\n`);
        return;
      }
      const extra = Object.entries(clean)
        .map(([key, value]) => `${key}=${formatValue(value)}`)
        .join(" ");
      options.sink.write(`${time} ${level} ${message}${extra ? ` ${extra}` : ""}\n`);
    },
  };
  const consola = createConsola({ level: consolaLevels[options.level], reporters: [reporter] });
  return new BoundLogger(consola, {});
}

const methodLevels = { trace: 5, debug: 4, info: 3, warn: 1, error: 0 } as const;

/**
 * Every request makes a child (its request id), and private invocations a grandchild (user and
 * project), so a child is one small object that points at its parent: the fields are merged
 * only when a line is written, which at the usual levels is rare for a request's own logger.
 */
class BoundLogger implements Logger {
  constructor(
    private readonly consola: ConsolaInstance,
    private readonly bound: LogFields,
    private readonly parent: BoundLogger | null = null,
  ) {}

  private emit(method: keyof typeof methodLevels, message: string, fields: LogFields | undefined): void {
    if (methodLevels[method] > this.consola.level) return;
    this.consola[method](message, this.fieldsWith(fields));
  }

  /** Ancestors' fields first, so a child's field of the same name wins, and the call's own last. */
  private fieldsWith(fields: LogFields | undefined): LogFields {
    const chain: LogFields[] = fields ? [fields] : [];
    for (let logger: BoundLogger | null = this; logger; logger = logger.parent) chain.push(logger.bound);
    return Object.assign({}, ...chain.reverse());
  }

  trace(message: string, fields?: LogFields): void {
    this.emit("trace", message, fields);
  }
  debug(message: string, fields?: LogFields): void {
    this.emit("debug", message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.emit("info", message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.emit("warn", message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.emit("error", message, fields);
  }
  child(fields: LogFields): Logger {
    return new BoundLogger(this.consola, fields, this);
  }
}

/** For tests and embedders that want no output. */
export const silentLogger: Logger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
