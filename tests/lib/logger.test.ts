import { describe, expect, it } from "vitest";
import { createLogger } from "../../app/lib/logger.ts";

function capture(format: "json" | "text") {
  const lines: string[] = [];
  const logger = createLogger({
    level: "debug",
    format,
    sink: { write: (line) => lines.push(line), reopen() {}, close: async () => {} },
  });
  return { logger, lines };
}

describe("logger redaction", () => {
  it("hides secret-named fields, nested ones too, in both formats", () => {
    for (const format of ["json", "text"] as const) {
      const { logger, lines } = capture(format);
      logger.child({ auth_token: "tok-1" }).info("event", {
        password: "pw-2",
        headers: { "x-auth-token": "tok-3", accept: "json" },
        list: [{ client_secret: "sec-4" }],
        Authorization: "Basic c2VjcmV0",
      });
      const line = lines.join("");
      for (const secret of ["tok-1", "pw-2", "tok-3", "sec-4", "c2VjcmV0"])
        expect(line).not.toContain(secret);
      expect(line).toContain("accept");
    }
  });

  it("removes credentials from URLs inside strings and errors", () => {
    for (const format of ["json", "text"] as const) {
      const { logger, lines } = capture(format);
      logger.error("failed", {
        reason: "cannot connect to mysql://picasso:dbpw-5@db:3306/picasso",
        error: new Error("GET http://admin:kspw-6@keystone:5000/v3 failed"),
      });
      const line = lines.join("");
      expect(line).not.toMatch(/dbpw-5|kspw-6/);
      expect(line).toContain("mysql://***@db:3306/picasso");
    }
  });

  it("keeps an error's message and stack in JSON", () => {
    const { logger, lines } = capture("json");
    logger.error("unhandled error", { error: new TypeError("boom") });
    const record = JSON.parse(lines[0] ?? "{}");
    expect(record.error).toMatchObject({ name: "TypeError", message: "boom" });
    expect(record.error.stack).toContain("TypeError: boom");
  });
});

describe("logger children", () => {
  it("carry their ancestors' fields; nearer ones and the call's own win", () => {
    const { logger, lines } = capture("json");
    const request = logger.child({ request_id: "req-1", scope: "request" });
    const user = request.child({ user_id: "u1", scope: "user" });
    user.info("event", { scope: "call", extra: 1 });
    request.info("plain");
    logger.info("root");
    const [first, second, third] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(first).toMatchObject({
      message: "event",
      request_id: "req-1",
      user_id: "u1",
      scope: "call",
      extra: 1,
    });
    expect(second).toMatchObject({ message: "plain", request_id: "req-1", scope: "request" });
    expect(second).not.toHaveProperty("user_id");
    expect(third).not.toHaveProperty("request_id");
  });
});
