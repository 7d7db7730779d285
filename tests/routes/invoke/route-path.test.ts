import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { routePathFrom } from "../../../app/routes/invoke/invocation.ts";

/** The rule spelled out segment by segment, as the engine cleans paths. */
function cleanedByRule(rest: string): string | null {
  if (rest.includes("%")) return null;
  const segments = rest.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (segments.includes("..")) return null;
  return `/${segments.join("/")}`;
}

describe("routePathFrom", () => {
  it.each([
    ["", "/"],
    ["/", "/"],
    ["/hello", "/hello"],
    ["/a/b/c", "/a/b/c"],
    ["/a//b/", "/a/b"],
    ["/./a/.", "/a"],
    ["/.hidden/...", "/.hidden/..."],
    ["/a/../b", null],
    ["/..", null],
    ["/a%2Fb", null],
  ])("%j -> %j", (rest, expected) => {
    expect(routePathFrom(rest)).toBe(expected);
  });

  it("plain paths and paths that need cleaning follow the same rule", () => {
    const segment = fc.oneof(
      fc.constantFrom("", ".", "..", "...", ".a", "a.", "%", "%2e", "x"),
      fc.string({ unit: fc.constantFrom("a", "b", ".", "-", "_", "~", "%", ":", "@") }),
    );
    const rest = fc.array(segment, { maxLength: 6 }).map((segments) => segments.map((s) => `/${s}`).join(""));
    fc.assert(
      fc.property(rest, (path) => {
        expect(routePathFrom(path)).toBe(cleanedByRule(path));
      }),
      { numRuns: 2000, seed: 20261126 },
    );
  });
});
