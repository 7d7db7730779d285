import { afterAll, describe, expect, it } from "vitest";
import { ApiError } from "../../../app/lib/errors.ts";
import { createLogger } from "../../../app/lib/logger.ts";
import { testApp } from "../../support/app.ts";
import { openTestDatabase } from "../../support/db.ts";

const database = openTestDatabase();
afterAll(() => database.close());

/** An app whose logs land in `lines`, with handlers that log and fail the ways real ones do. */
function loggingApp(format: "json" | "text") {
  const lines: string[] = [];
  const logger = createLogger({
    level: "debug",
    format,
    sink: { write: (line) => lines.push(line), reopen() {}, close: async () => {} },
  });
  const { app } = testApp(database, { logger });
  app.get("/works", (c) => {
    c.var.log.info("handler step", { step: 1 });
    return c.text("fine");
  });
  app.get("/crashes", (c) => {
    c.var.log.debug("about to crash");
    throw new Error("kaboom");
  });
  app.get("/unavailable", (c) => {
    c.var.log.warn("dependency is down");
    throw new ApiError("service_unavailable", "Keystone is unreachable");
  });
  return { app, lines };
}

describe("X-Openstack-Request-Id in logs", () => {
  it("is on every JSON log line of a request, including the error logs of onError", async () => {
    const { app, lines } = loggingApp("json");
    for (const path of ["/works", "/crashes", "/unavailable", "/missing"]) {
      lines.length = 0;
      const response = await app.fetch(new Request(`http://x${path}`));
      const id = response.headers.get("x-openstack-request-id");
      expect(id).toMatch(/^req-[0-9a-f-]{36}$/);
      const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      // The handler's own line (if any), onError's line (if any) and the access log line.
      expect(records.length).toBeGreaterThanOrEqual(path === "/missing" ? 1 : 2);
      for (const record of records) expect(record.request_id).toBe(id);
      expect(records.at(-1)).toMatchObject({ message: "request", path });
    }
  });

  it("keeps the error itself in the JSON log of an unhandled error, not in the response", async () => {
    const { app, lines } = loggingApp("json");
    const response = await app.fetch(new Request("http://x/crashes"));
    expect(response.status).toBe(500);
    expect(await response.text()).not.toContain("kaboom");
    const unhandled = lines.map((line) => JSON.parse(line)).find((r) => r.message === "unhandled error");
    expect(unhandled.level).toBe("ERROR");
    expect(unhandled.error.message).toBe("kaboom");
    expect(unhandled.error.stack).toContain("kaboom");
  });

  it("is on every text log line, and a caller's well-formed id is the one logged", async () => {
    const { app, lines } = loggingApp("text");
    const id = "req-0f8fad5b-d9cb-469f-a165-70867728950e";
    for (const path of ["/works", "/crashes", "/unavailable"]) {
      lines.length = 0;
      const response = await app.fetch(
        new Request(`http://x${path}`, { headers: { "X-Openstack-Request-Id": id } }),
      );
      expect(response.headers.get("x-openstack-request-id")).toBe(id);
      expect(lines.length).toBeGreaterThanOrEqual(2);
      for (const line of lines) expect(line).toContain(`request_id=${id}`);
    }
  });
});
