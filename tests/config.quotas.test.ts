import { describe, expect, it } from "vitest";
import { loadDevConfig, loadServeConfig } from "../app/config.ts";

const minimal = { "db-uri": "mysql://root@127.0.0.1:3306/picasso", "keystone-endpoint": "http://ks:5000/v3" };

describe("quota options", () => {
  it("default to 100 apps, 100 routes per app and 100 concurrent invocations, in dev too", () => {
    for (const config of [loadServeConfig(minimal, {}), loadDevConfig({}, {})]) {
      expect(config["quota-apps"]).toBe(100);
      expect(config["quota-routes-per-app"]).toBe(100);
      expect(config["quota-concurrent-invocations"]).toBe(100);
    }
  });

  it("read flags and the environment; -1 is unlimited and 0 allows nothing", () => {
    const config = loadServeConfig(
      { ...minimal, "quota-apps": "-1" },
      {
        PICASSO_QUOTA_APPS: "5",
        PICASSO_QUOTA_ROUTES_PER_APP: "0",
        PICASSO_QUOTA_CONCURRENT_INVOCATIONS: "1000000",
      },
    );
    expect(config["quota-apps"]).toBe(-1);
    expect(config["quota-routes-per-app"]).toBe(0);
    expect(config["quota-concurrent-invocations"]).toBe(1_000_000);
  });

  it.each(["-2", "1.5", "lots", "1000001"])("refuse %s naming the option", (value) => {
    expect(() => loadServeConfig(minimal, { PICASSO_QUOTA_CONCURRENT_INVOCATIONS: value })).toThrow(
      "invalid option --quota-concurrent-invocations (PICASSO_QUOTA_CONCURRENT_INVOCATIONS): must be an integer from -1 (unlimited) to 1000000",
    );
  });
});
