import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { functionBaseEnv } from "../../../../app/config.ts";
import type { Logger } from "../../../../app/lib/logger.ts";
import {
  createLocalEngine,
  type LocalEngine,
  type LocalEngineOptions,
} from "../../../../app/services/engine/local/index.ts";
import type { EngineCall, EngineRoute } from "../../../../app/services/engine/types.ts";
import { engineRoute } from "../../../support/engine-route.ts";
import { recordingLogger } from "../../../support/logger.ts";

export const fixtures = fileURLToPath(new URL("../../../fixtures/local-functions", import.meta.url));

export function testRoute(image: string, overrides: Partial<EngineRoute> = {}): EngineRoute {
  return engineRoute({ path: "/fn", image, ...overrides });
}

export function testCall(route: EngineRoute, overrides: Partial<EngineCall> = {}): EngineCall {
  return {
    engineApp: `app-${randomUUID().slice(0, 8)}`,
    appConfig: {},
    route,
    method: "POST",
    path: route.path,
    query: "",
    headers: new Headers({ host: "picasso.test:10001" }),
    body: null,
    requestId: `req-${randomUUID()}`,
    signal: new AbortController().signal,
    ...overrides,
  };
}

export function testEngine(overrides: Partial<LocalEngineOptions> = {}): {
  engine: LocalEngine;
  log: ReturnType<typeof recordingLogger>;
} {
  const log = recordingLogger();
  const engine = createLocalEngine({
    directory: fixtures,
    logger: log as Logger,
    baseEnv: functionBaseEnv(),
    ...overrides,
  });
  return { engine, log };
}

/** A request body the test writes to and closes when it likes. */
export function openBody(): { body: ReadableStream<Uint8Array>; write(text: string): void; close(): void } {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  return {
    body,
    write: (text) => controller.enqueue(new TextEncoder().encode(text)),
    close: () => controller.close(),
  };
}

export function bodyOf(text: string): ReadableStream<Uint8Array> {
  const body = openBody();
  body.write(text);
  body.close();
  return body.body;
}

/** Reads one chunk of a response body as text. */
export async function readChunk(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string | null> {
  const next = await reader.read();
  return next.done ? null : new TextDecoder().decode(next.value);
}
