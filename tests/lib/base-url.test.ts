import { describe, expect, it } from "vitest";
import { baseUrlFrom } from "../../app/lib/base-url.ts";

describe("baseUrlFrom", () => {
  it("prefers the public URL and asks for the request's origin only without one", () => {
    let asked = 0;
    const origin = () => {
      asked++;
      return "http://10.0.0.5:8080";
    };
    expect(baseUrlFrom("https://faas.example.org", origin)).toBe("https://faas.example.org");
    expect(asked).toBe(0);
    expect(baseUrlFrom(undefined, origin)).toBe("http://10.0.0.5:8080");
    expect(asked).toBe(1);
  });

  it("drops trailing slashes, however many", () => {
    expect(baseUrlFrom("https://faas.example.org/", () => "")).toBe("https://faas.example.org");
    expect(baseUrlFrom("https://faas.example.org/picasso//", () => "")).toBe(
      "https://faas.example.org/picasso",
    );
    expect(baseUrlFrom(undefined, () => "http://host/")).toBe("http://host");
  });
});
