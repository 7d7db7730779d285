// A write holds its app's rows while it waits for the engine. Another write of the same app waits
// for those rows no longer than the pool's lock wait timeout (serve sets --functions-timeout),
// then answers 503 and changes nothing, instead of queueing for InnoDB's 50 s and retrying.
import { afterAll, describe, expect, it } from "vitest";
import { defaultRoleNames } from "../../../app/services/auth/types.ts";
import type { FunctionEngine } from "../../../app/services/engine/types.ts";
import { isRetryableLockError, scrubDatabaseError } from "../../../app/services/management/failures.ts";
import { createNoAuthAuthenticator } from "../../../app/services/noauth/index.ts";
import { createDatabase } from "../../../db/client.ts";
import { testApp, unreachableEngine } from "../../support/app.ts";
import { testDbUri } from "../../support/db.ts";
import { seedRoute } from "../../support/invoke-harness.ts";

const database = createDatabase(testDbUri(), { connectionLimit: 4, lockWaitTimeoutS: 1 });
afterAll(() => database.close());

describe("row lock waits of writes", () => {
  it("are bounded by the pool's lock wait timeout", async () => {
    const [rows] = await database.pool.query("SELECT @@innodb_lock_wait_timeout AS seconds");
    expect((rows as { seconds: number }[])[0]?.seconds).toBe(1);
  });

  it("answer 503 to a write that waits on one stuck at the engine, and change nothing", async () => {
    const seeded = await seedRoute(database, null);
    let release: () => void = () => {};
    const stuck = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    // The first config change hangs at the engine until released; later ones would succeed.
    const engine = new Proxy(unreachableEngine, {
      get(target, property, receiver) {
        if (property === "updateAppConfig") {
          return async () => {
            calls++;
            if (calls === 1) await stuck;
          };
        }
        return Reflect.get(target, property, receiver);
      },
    }) as FunctionEngine;
    const { app } = testApp(database, { engine, authenticator: createNoAuthAuthenticator(defaultRoleNames) });
    const patch = (value: string) =>
      app.fetch(
        new Request(`http://picasso.test/v1/${seeded.projectId}/apps/${seeded.appName}`, {
          method: "PATCH",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ config: { STEP: value } }),
        }),
      );

    const first = patch("first");
    while (calls === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const started = performance.now();
    const second = await patch("second");
    const waited = performance.now() - started;
    expect(second.status).toBe(503);
    expect(second.headers.get("retry-after")).toBe("1");
    expect(await second.json()).toEqual({
      error: {
        code: "service_unavailable",
        message: "Another change to the same app is still in progress; try again",
      },
    });
    // One lock wait, not three (a lock wait timeout is not retried), nor InnoDB's 50 s.
    expect(waited).toBeLessThan(2900);
    expect(calls).toBe(1);

    release();
    expect((await first).status).toBe(200);
    const [rows] = await database.pool.query("SELECT config FROM apps WHERE name = ?", [seeded.appName]);
    expect((rows as { config: unknown }[])[0]?.config).toEqual({ STEP: "first" });
  });

  it("are told apart from deadlocks, which are retried", () => {
    const waitTimeout = Object.assign(new Error("Lock wait timeout exceeded"), {
      code: "ER_LOCK_WAIT_TIMEOUT",
    });
    const deadlock = Object.assign(new Error("Deadlock found"), { code: "ER_LOCK_DEADLOCK" });
    expect(isRetryableLockError(waitTimeout)).toBe(false);
    expect(isRetryableLockError(deadlock)).toBe(true);
    expect(scrubDatabaseError(waitTimeout)).toMatchObject({ status: 503, code: "service_unavailable" });
  });
});
