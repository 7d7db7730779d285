// A write whose MySQL connection dies during COMMIT (KILL, a cut network) cannot know whether the
// commit landed. Neither undoing the engine's change nor keeping it is safe; the write asks MySQL
// again and makes the engine match it. Both outcomes are simulated around a real transaction.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../../app/lib/logger.ts";
import { createIronFunctionsEngine } from "../../../app/services/engine/ironfunctions/index.ts";
import { createApp } from "../../../app/services/management/apps.ts";
import type { Database } from "../../../db/client.ts";
import { testQuotas } from "../../support/app.ts";
import { openTestDatabase } from "../../support/db.ts";
import { type FakeIronFunctions, startFakeIronFunctions } from "../../support/ironfunctions/server.ts";
import { freshAppName } from "../../support/management.ts";
import { eventually } from "../../support/processes.ts";

const database = openTestDatabase();
let fake: FakeIronFunctions;
let engine: ReturnType<typeof createIronFunctionsEngine>;

beforeAll(async () => {
  fake = await startFakeIronFunctions();
  engine = createIronFunctionsEngine({ url: fake.apiUrl });
});
afterAll(async () => {
  await engine?.close();
  await fake?.stop();
  await database.close();
});

/** What mysql2 reports when the server closes the connection under a query. */
const connectionLost = () =>
  Object.assign(new Error("Connection lost: The server closed the connection."), {
    code: "PROTOCOL_CONNECTION_LOST",
    fatal: true,
  });

/**
 * The test database, except that the first transaction loses its connection at COMMIT: after
 * MySQL committed (`landed`) or before (the transaction is rolled back). The `unreachableFor`
 * transactions after it fail to connect, as while MySQL is down.
 */
function commitCutOff(landed: boolean, unreachableFor = 0): Database {
  let cut = false;
  let refusals = 0;
  return new Proxy(database.db, {
    get(target, property, receiver) {
      if (property !== "transaction") return Reflect.get(target, property, receiver);
      if (cut && refusals >= unreachableFor) return Reflect.get(target, property, receiver);
      if (cut) {
        refusals++;
        return async () => {
          throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:3306"), { code: "ECONNREFUSED" });
        };
      }
      cut = true;
      return async (work: (tx: unknown) => Promise<unknown>) => {
        if (landed) {
          await target.transaction(work as never);
        } else {
          await target
            .transaction(async (tx) => {
              await work(tx);
              throw connectionLost();
            })
            .catch(() => {});
        }
        throw connectionLost();
      };
    },
  });
}

async function storedApp(name: string) {
  const [rows] = await database.pool.query("SELECT engine_name FROM apps WHERE name = ?", [name]);
  return (rows as { engine_name: string }[])[0]?.engine_name;
}

describe("a commit cut off by a lost connection", () => {
  it.each([
    ["landed", true],
    ["did not land", false],
  ])("leaves the engine as MySQL is when the commit %s", async (_, landed) => {
    const name = freshAppName();
    const project = freshAppName("unknowncommit");
    const before = new Set(fake.apps().map((app) => app.name));
    const services = { db: commitCutOff(landed), engine, logger: silentLogger, quotas: testQuotas(database) };
    await expect(createApp(services, project, { name })).rejects.toMatchObject({
      status: 503,
      code: "database_unavailable",
    });
    const engineName = await storedApp(`${name}-${project}`);
    const onEngine = new Set(
      fake
        .apps()
        .map((app) => app.name)
        .filter((app) => !before.has(app)),
    );
    if (landed) {
      expect(engineName).toBeDefined();
      expect(onEngine.has(engineName ?? "")).toBe(true);
    } else {
      expect(engineName).toBeUndefined();
    }
    // Whatever happened, MySQL and the engine hold the same apps.
    const [rows] = await database.pool.query("SELECT engine_name FROM apps WHERE project_id = ?", [project]);
    expect(onEngine).toEqual(new Set((rows as { engine_name: string }[]).map((row) => row.engine_name)));
  });

  it("answers at once while MySQL stays down, and makes the engine match once MySQL is back", async () => {
    const name = freshAppName();
    const project = freshAppName("unknowncommit");
    const before = new Set(fake.apps().map((app) => app.name));
    const newOnEngine = () => fake.apps().filter((app) => !before.has(app.name));
    // The commit did not land, and MySQL refuses the three attempts made while the client waits
    // and the first one in the background.
    const services = {
      db: commitCutOff(false, 4),
      engine,
      logger: silentLogger,
      quotas: testQuotas(database),
    };
    const started = performance.now();
    await expect(createApp(services, project, { name })).rejects.toMatchObject({ status: 503 });
    expect(performance.now() - started).toBeLessThan(3000);
    expect(newOnEngine()).toHaveLength(1);
    await eventually(() => newOnEngine().length === 0, "the engine matches MySQL again", 15_000);
    expect(newOnEngine()).toEqual([]);
    expect(await storedApp(`${name}-${project}`)).toBeUndefined();
  }, 30_000);
});
