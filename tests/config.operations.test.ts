import { describe, expect, it } from "vitest";
import { ConfigError, loadServeConfig } from "../app/config.ts";

const dbUri = "mysql://root@127.0.0.1:3306/picasso";
const keystoneEndpoint = "http://keystone.example:5000/v3";

describe("operations options", () => {
  it("has defaults that suit a server behind HAProxy", () => {
    const config = loadServeConfig({ "db-uri": dbUri, "keystone-endpoint": keystoneEndpoint }, {});
    expect(config["shutdown-delay"]).toBe(0);
    expect(config["header-timeout"]).toBe(60);
    expect(config["body-timeout"]).toBe(60);
    expect(config["keepalive-timeout"]).toBe(75);
    expect(config["max-header-size"]).toBe(16384);
    expect(config.metrics).toBe(true);
    expect(config["healthcheck-cache"]).toBe(5);
    expect(config["healthcheck-timeout"]).toBe(3);
  });

  it("reads them from the environment", () => {
    const config = loadServeConfig(
      {},
      {
        PICASSO_DB: dbUri,
        KEYSTONE_ENDPOINT: keystoneEndpoint,
        PICASSO_SHUTDOWN_DELAY: "10",
        PICASSO_HEADER_TIMEOUT: "20",
        PICASSO_BODY_TIMEOUT: "1.5",
        PICASSO_KEEPALIVE_TIMEOUT: "120",
        PICASSO_MAX_HEADER_SIZE: "32768",
        PICASSO_METRICS: "off",
        PICASSO_HEALTHCHECK_CACHE: "0",
        PICASSO_HEALTHCHECK_TIMEOUT: "0.5",
      },
    );
    expect(config["shutdown-delay"]).toBe(10);
    expect(config["header-timeout"]).toBe(20);
    expect(config["body-timeout"]).toBe(1.5);
    expect(config["keepalive-timeout"]).toBe(120);
    expect(config["max-header-size"]).toBe(32768);
    expect(config.metrics).toBe(false);
    expect(config["healthcheck-cache"]).toBe(0);
    expect(config["healthcheck-timeout"]).toBe(0.5);
  });

  it.each([
    ["on", true],
    ["OFF", false],
    ["true", true],
    ["0", false],
  ])("reads --metrics %s", (value, expected) => {
    expect(
      loadServeConfig({ "db-uri": dbUri, "keystone-endpoint": keystoneEndpoint, metrics: value }, {}).metrics,
    ).toBe(expected);
  });

  it.each([
    [{ metrics: "maybe" }, "--metrics (PICASSO_METRICS): must be on or off"],
    [{ "shutdown-delay": "-1" }, "--shutdown-delay (PICASSO_SHUTDOWN_DELAY): must not be negative"],
    [{ "header-timeout": "0" }, "--header-timeout (PICASSO_HEADER_TIMEOUT): must be more than 0"],
    [{ "body-timeout": "0" }, "--body-timeout (PICASSO_BODY_TIMEOUT): must be more than 0"],
    [{ "keepalive-timeout": "soon" }, "--keepalive-timeout (PICASSO_KEEPALIVE_TIMEOUT): must be a number"],
    [{ "max-header-size": "100" }, "--max-header-size (PICASSO_MAX_HEADER_SIZE): must be at least 1024"],
    [
      { "healthcheck-timeout": "0" },
      "--healthcheck-timeout (PICASSO_HEALTHCHECK_TIMEOUT): must be more than 0",
    ],
    [
      { "healthcheck-cache": "4000" },
      "--healthcheck-cache (PICASSO_HEALTHCHECK_CACHE): must be at most 3600",
    ],
  ])("rejects %o naming the option", (flags, message) => {
    const attempt = () =>
      loadServeConfig({ "db-uri": dbUri, "keystone-endpoint": keystoneEndpoint, ...flags }, {});
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(message);
  });
});
