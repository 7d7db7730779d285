// MySQL not answering is a 503 `database_unavailable`, for reads, writes and invocation lookups
// alike, and never a 500; query errors and other dependencies' failures are not mistaken for it.
import { afterAll, describe, expect, it } from "vitest";
import { ApiError } from "../../../app/lib/errors.ts";
import { defaultRoleNames } from "../../../app/services/auth/types.ts";
import { EngineError } from "../../../app/services/engine/types.ts";
import {
  databaseUnavailable,
  isDatabaseUnavailable,
  scrubDatabaseError,
} from "../../../app/services/management/failures.ts";
import { createNoAuthAuthenticator } from "../../../app/services/noauth/index.ts";
import { createDatabase } from "../../../db/client.ts";
import { testApp } from "../../support/app.ts";
import { freePort } from "../../support/cli.ts";
import { openTestDatabase, testDbUri } from "../../support/db.ts";

const database = openTestDatabase();
afterAll(() => database.close());

async function nowhere() {
  const url = new URL(testDbUri());
  url.port = String(await freePort());
  return createDatabase(url.toString(), { connectionLimit: 2, connectTimeoutMs: 2000 });
}

describe("MySQL unreachable", () => {
  it("answers reads, writes and invocation lookups with a JSON 503, never 500", async () => {
    const down = await nowhere();
    try {
      const { app } = testApp(down, { authenticator: createNoAuthAuthenticator(defaultRoleNames) });
      const requests = [
        new Request("http://picasso.test/v1/p1/apps"),
        new Request("http://picasso.test/v1/p1/apps/a-p1/routes/x"),
        new Request("http://picasso.test/v1/p1/apps", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ app: { name: "a" } }),
        }),
        new Request("http://picasso.test/v1/p1/apps/a-p1", {
          method: "PATCH",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ config: { A: "b" } }),
        }),
        new Request("http://picasso.test/r/a-p1/hello", { method: "POST" }),
        new Request("http://picasso.test/v1/r/p1/a-p1/hello", { method: "POST" }),
      ];
      for (const request of requests) {
        const response = await app.fetch(request);
        expect(response.status, `${request.method} ${request.url}`).toBe(503);
        expect(response.headers.get("retry-after")).toBe("1");
        expect(await response.json()).toEqual({
          error: {
            code: "database_unavailable",
            message: expect.stringContaining("database is unavailable"),
          },
        });
      }
    } finally {
      await down.close();
    }
  });
});

describe("isDatabaseUnavailable", () => {
  it("recognises a connection killed under a query, as the driver reports it", async () => {
    const connection = await database.pool.getConnection();
    const killer = await database.pool.getConnection();
    try {
      const [[{ id }]] = (await connection.query("SELECT CONNECTION_ID() AS id")) as unknown as [
        [{ id: number }],
      ];
      const sleeping = connection.query("SELECT SLEEP(5)").catch((error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await killer.query(`KILL ${Number(id)}`);
      const error = await sleeping;
      expect(error).toBeInstanceOf(Error);
      expect(isDatabaseUnavailable(error)).toBe(true);
      expect(scrubDatabaseError(error)).toMatchObject({ status: 503, code: "database_unavailable" });
    } finally {
      connection.release();
      killer.release();
    }
  });

  it("leaves query errors, API errors and engine errors alone", async () => {
    const missingTable = await database.pool
      .query("SELECT * FROM no_such_table_here")
      .catch((error: unknown) => error);
    expect(isDatabaseUnavailable(missingTable)).toBe(false);
    // An engine that refused the connection carries ECONNREFUSED too: it stays the engine's 503.
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED", fatal: true });
    expect(isDatabaseUnavailable(new EngineError("unavailable", "down", undefined, { cause: refused }))).toBe(
      false,
    );
    expect(isDatabaseUnavailable(new ApiError("service_unavailable", "down", { cause: refused }))).toBe(
      false,
    );
    expect(isDatabaseUnavailable(new Error("Queue limit reached."))).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error("killed"), { errno: 1927 }))).toBe(true);
    expect(
      databaseUnavailable(Object.assign(new Error("x"), { code: "PROTOCOL_CONNECTION_LOST" })).message,
    ).toBe("The database is unavailable (PROTOCOL_CONNECTION_LOST); try again later");
  });
});
