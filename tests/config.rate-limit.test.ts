import { describe, expect, it } from "vitest";
import { ConfigError, loadDevConfig, loadServeConfig } from "../app/config.ts";

const required = {
  "db-uri": "mysql://root@127.0.0.1:3306/picasso",
  "auth-strategy": "noauth",
  host: "127.0.0.1",
};

describe("rate limit options", () => {
  it("default to 50/s + 100 public, 200/s + 400 private, in memory, failing open, no trusted proxy", () => {
    const config = loadServeConfig(required, {});
    expect(config).toMatchObject({
      "rate-limit-public": 50,
      "rate-limit-public-burst": 100,
      "rate-limit-private": 200,
      "rate-limit-private-burst": 400,
      "rate-limit-on-redis-failure": "open",
    });
    expect(config["redis-url"]).toBeUndefined();
    expect(config["trusted-proxies"]).toBeNull();
    expect(loadDevConfig({}, {})["rate-limit-public"]).toBe(50);
  });

  it("reads them from the environment; 0 turns a kind's default off", () => {
    const config = loadServeConfig(required, {
      PICASSO_RATE_LIMIT_PUBLIC: "0",
      PICASSO_RATE_LIMIT_PUBLIC_BURST: "0",
      PICASSO_RATE_LIMIT_PRIVATE: "100000",
      PICASSO_RATE_LIMIT_PRIVATE_BURST: "1000000",
      PICASSO_TRUSTED_PROXIES: "10.0.0.0/8, fd00::1",
      PICASSO_REDIS_URL: "redis://:secret@redis.example:6379/2",
      PICASSO_RATE_LIMIT_ON_REDIS_FAILURE: "CLOSED",
    });
    expect(config).toMatchObject({
      "rate-limit-public": 0,
      "rate-limit-public-burst": 0,
      "rate-limit-private": 100_000,
      "rate-limit-private-burst": 1_000_000,
      "redis-url": "redis://:secret@redis.example:6379/2",
      "rate-limit-on-redis-failure": "closed",
    });
    expect(config["trusted-proxies"]?.check("10.20.30.40", "ipv4")).toBe(true);
    expect(config["trusted-proxies"]?.check("fd00::1", "ipv6")).toBe(true);
    expect(config["trusted-proxies"]?.check("fd00::2", "ipv6")).toBe(false);
  });

  it.each([
    [
      "rate-limit-public",
      "-1",
      /--rate-limit-public \(PICASSO_RATE_LIMIT_PUBLIC\): must be between 0 and 100000/,
    ],
    ["rate-limit-private", "100001", /--rate-limit-private .*must be between 0 and 100000/],
    ["rate-limit-public-burst", "1.5", /--rate-limit-public-burst .*must be an integer/],
    ["rate-limit-private-burst", "lots", /--rate-limit-private-burst .*must be a number/],
    [
      "trusted-proxies",
      "10.0.0.0/8,proxy.example",
      /--trusted-proxies .*"proxy.example" is not an IP address or CIDR/,
    ],
    ["redis-url", "http://redis.example:6379", /--redis-url .*must be a URL like redis:\/\/host:6379/],
    ["redis-url", "redis:///", /--redis-url/],
    ["rate-limit-on-redis-failure", "maybe", /--rate-limit-on-redis-failure .*must be open or closed/],
  ])("refuses --%s %s, naming the option", (option, value, message) => {
    expect(() => loadServeConfig({ ...required, [option]: value }, {})).toThrow(ConfigError);
    expect(() => loadServeConfig({ ...required, [option]: value }, {})).toThrow(message);
  });
});
