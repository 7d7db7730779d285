import { describe, expect, it } from "vitest";
import { ConfigError, loadServeConfig, migrationsDbUri, normaliseDbUri } from "../app/config.ts";

const dbUri = "mysql://root@127.0.0.1:3306/picasso";

describe("serve configuration", () => {
  it("uses the original's defaults", () => {
    const config = loadServeConfig({ "db-uri": dbUri }, {});
    expect(config.host).toBe("0.0.0.0");
    expect(config.port).toBe(10001);
    expect(config["functions-url"]).toBe("http://localhost:8080/v1");
    expect(config["log-level"]).toBe("info");
    expect(config["log-format"]).toBe("text");
  });

  it("takes a flag over the environment over the default", () => {
    const env = { PICASSO_PORT: "2000", PICASSO_HOST: "127.0.0.2", PICASSO_DB: dbUri };
    const config = loadServeConfig({ port: "3000" }, env);
    expect(config.port).toBe(3000);
    expect(config.host).toBe("127.0.0.2");
    expect(config["db-uri"]).toBe(dbUri);
  });

  it("accepts the original's mysql+pymysql:// URIs", () => {
    const config = loadServeConfig({ "db-uri": "mysql+pymysql://user:pw@db.example:3306/functions" }, {});
    expect(config["db-uri"]).toBe("mysql://user:pw@db.example:3306/functions");
  });

  it("accepts Python log level names in any case", () => {
    expect(loadServeConfig({ "db-uri": dbUri, "log-level": "WARNING" }, {})["log-level"]).toBe("warning");
    expect(loadServeConfig({ "db-uri": dbUri, "log-level": "debug" }, {})["log-level"]).toBe("debug");
  });

  it.each([
    [{ port: "abc" }, "--port (PICASSO_PORT): must be a port number"],
    [{ port: "70000" }, "--port (PICASSO_PORT): must be between 0 and 65535"],
    [{ "log-level": "LOUD" }, "--log-level (PICASSO_LOG_LEVEL)"],
    [
      { "functions-url": "ftp://engine/v1" },
      "--functions-url (FUNCTIONS_URL): must be an http(s) URL without credentials, or local:<directory>",
    ],
    [{ "db-uri": "postgres://x/y" }, "--db-uri (PICASSO_DB): must start with mysql://"],
    [{ "db-uri": "mysql://root@127.0.0.1/" }, "--db-uri (PICASSO_DB): must name a database"],
    [{ "log-format": "xml" }, "--log-format (PICASSO_LOG_FORMAT): must be text or json"],
  ])("rejects %o naming the option", (flags, message) => {
    const attempt = () => loadServeConfig({ "db-uri": dbUri, ...flags }, {});
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(message);
  });

  it("requires a database URI", () => {
    expect(() => loadServeConfig({}, {})).toThrow("invalid option --db-uri (PICASSO_DB): is required");
  });

  it("ignores empty environment values like unset ones", () => {
    expect(loadServeConfig({ "db-uri": dbUri }, { PICASSO_PORT: "" }).port).toBe(10001);
  });
});

describe("database URIs", () => {
  it("keeps credentials and port", () => {
    expect(normaliseDbUri("mysql+pymysql://u:p%40ss@h:3307/db")).toBe("mysql://u:p%40ss@h:3307/db");
  });

  it("reads PICASSO_MIGRATIONS_DB for drizzle-kit", () => {
    expect(migrationsDbUri({ PICASSO_MIGRATIONS_DB: "mysql+pymysql://root@localhost/functions" })).toBe(
      "mysql://root@localhost/functions",
    );
    expect(() => migrationsDbUri({})).toThrow(ConfigError);
  });
});
