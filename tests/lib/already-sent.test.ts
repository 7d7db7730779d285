import { describe, expect, it } from "vitest";
import { alreadySent, alreadySentHeader, isAlreadySent } from "../../app/lib/already-sent.ts";

describe("alreadySent", () => {
  it("gives one shared, marked answer per status", () => {
    const first = alreadySent(201);
    expect(alreadySent(201)).toBe(first);
    expect(first.status).toBe(201);
    expect(first.headers.get(alreadySentHeader)).toBe("true");
    expect(alreadySent(404)).not.toBe(first);
  });

  it("recognises the shared answers and any response carrying the marker", () => {
    expect(isAlreadySent(alreadySent(200))).toBe(true);
    expect(isAlreadySent(new Response(null, { headers: { [alreadySentHeader]: "true" } }))).toBe(true);
  });

  it("does not take an ordinary response for one already sent", () => {
    expect(isAlreadySent(new Response("body", { status: 200 }))).toBe(false);
  });
});
