import { createApp } from "../../app/app.ts";
import { silentLogger } from "../../app/lib/logger.ts";
import type { AppServices } from "../../app/types.ts";
import type { DatabaseHandle } from "../../db/client.ts";

/** An app over the test database with quiet logs; override any service per test. */
export function testApp(database: DatabaseHandle, overrides: Partial<AppServices> = {}) {
  const services: AppServices = {
    db: database.db,
    logger: silentLogger,
    lifecycle: { draining: false },
    ...overrides,
  };
  return { app: createApp(services), services };
}
