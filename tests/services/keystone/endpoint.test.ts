import { describe, expect, it } from "vitest";
import { parseKeystoneEndpoint } from "../../../app/services/keystone/index.ts";

describe("Keystone endpoint", () => {
  it.each([
    ["http://keystone:5000", "http://keystone:5000"],
    ["http://keystone:5000/", "http://keystone:5000"],
    ["http://keystone:5000/v3", "http://keystone:5000"],
    ["http://keystone:5000/v3/", "http://keystone:5000"],
    ["https://cloud.example/identity", "https://cloud.example/identity"],
    ["https://cloud.example/identity/v3//", "https://cloud.example/identity"],
  ])("reads %s as the service root %s", (raw, base) => {
    expect(parseKeystoneEndpoint(raw)).toEqual({ base, v3: `${base}/v3` });
  });

  it("refuses what is not http(s)", () => {
    expect(() => parseKeystoneEndpoint("ftp://keystone/v3")).toThrow("http(s)");
  });
});
