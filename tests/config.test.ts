import { describe, expect, it } from "vitest";
import {
  ConfigError,
  engineOptions,
  isLoopbackHost,
  loadReconcileConfig,
  loadServeConfig,
  migrationsDbUri,
  normaliseDbUri,
} from "../app/config.ts";
import {
  authenticatorFromConfig,
  roleNamesFromConfig,
  serviceCredentialsFromConfig,
} from "../app/services/auth/from-config.ts";
import { captureLogs } from "./support/logs.ts";

const dbUri = "mysql://root@127.0.0.1:3306/picasso";
const keystone = "http://keystone.example:5000/v3";
/** The least `serve` needs: a database and Keystone. */
const minimal = { "db-uri": dbUri, "keystone-endpoint": keystone };

describe("serve configuration", () => {
  it("uses the original's defaults", () => {
    const config = loadServeConfig(minimal, {});
    expect(config.host).toBe("0.0.0.0");
    expect(config.port).toBe(10001);
    expect(config["functions-url"]).toBe("http://localhost:8080/v1");
    expect(config["log-level"]).toBe("info");
    expect(config["log-format"]).toBe("text");
  });

  it("takes a flag over the environment over the default", () => {
    const env = {
      PICASSO_PORT: "2000",
      PICASSO_HOST: "127.0.0.2",
      PICASSO_DB: dbUri,
      KEYSTONE_ENDPOINT: keystone,
    };
    const config = loadServeConfig({ port: "3000" }, env);
    expect(config.port).toBe(3000);
    expect(config.host).toBe("127.0.0.2");
    expect(config["db-uri"]).toBe(dbUri);
  });

  it("accepts the original's mysql+pymysql:// URIs", () => {
    const config = loadServeConfig(
      { ...minimal, "db-uri": "mysql+pymysql://user:pw@db.example:3306/functions" },
      {},
    );
    expect(config["db-uri"]).toBe("mysql://user:pw@db.example:3306/functions");
  });

  it("accepts Python log level names in any case", () => {
    expect(loadServeConfig({ ...minimal, "log-level": "WARNING" }, {})["log-level"]).toBe("warning");
    expect(loadServeConfig({ ...minimal, "log-level": "debug" }, {})["log-level"]).toBe("debug");
  });

  it.each([
    [{ port: "abc" }, "--port (PICASSO_PORT): must be a port number"],
    [{ port: "70000" }, "--port (PICASSO_PORT): must be between 0 and 65535"],
    [{ "log-level": "LOUD" }, "--log-level (PICASSO_LOG_LEVEL)"],
    [
      { "functions-url": "ftp://engine/v1" },
      "--functions-url (FUNCTIONS_URL): must be an http(s) URL without credentials, or local:<directory>",
    ],
    [
      { "functions-url": "http://engine:8080" },
      "--functions-url (FUNCTIONS_URL): must be the IronFunctions API URL ending in /v1",
    ],
    [{ "functions-timeout": "0" }, "--functions-timeout (PICASSO_FUNCTIONS_TIMEOUT): must be at least 0.1"],
    [{ "functions-jwt-key": "" }, "--functions-jwt-key (FUNCTIONS_JWT_KEY): must not be empty"],
    [
      { "public-url": "https://user:pw@api.example" },
      "--public-url (PICASSO_PUBLIC_URL): must be an http(s) URL without credentials",
    ],
    [{ "db-uri": "postgres://x/y" }, "--db-uri (PICASSO_DB): must start with mysql://"],
    [{ "db-uri": "mysql://root@127.0.0.1/" }, "--db-uri (PICASSO_DB): must name a database"],
    [{ "log-format": "xml" }, "--log-format (PICASSO_LOG_FORMAT): must be text or json"],
  ])("rejects %o naming the option", (flags, message) => {
    const attempt = () => loadServeConfig({ ...minimal, ...flags }, {});
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(message);
  });

  it("configures the function engine driver and the public URL", () => {
    const config = loadServeConfig(
      { ...minimal, "public-url": "https://faas.example.org/" },
      {
        FUNCTIONS_URL: "https://engine.example:8443/v1/",
        FUNCTIONS_JWT_KEY: "k",
        PICASSO_FUNCTIONS_TIMEOUT: "2.5",
      },
    );
    expect(config["public-url"]).toBe("https://faas.example.org");
    expect(engineOptions(config)).toEqual({
      url: "https://engine.example:8443/v1",
      jwtKey: "k",
      requestTimeoutMs: 2500,
      connectTimeoutMs: 3000,
      invokeTimeoutMarginMs: 2000,
    });
    const reconcile = loadReconcileConfig({ "db-uri": dbUri }, {});
    expect(reconcile["functions-timeout"]).toBe(10);
  });

  it("requires a database URI", () => {
    expect(() => loadServeConfig({}, {})).toThrow("invalid option --db-uri (PICASSO_DB): is required");
  });

  it("ignores empty environment values like unset ones", () => {
    expect(loadServeConfig(minimal, { PICASSO_PORT: "" }).port).toBe(10001);
  });
});

describe("authentication options", () => {
  it("defaults to Keystone with self-validation, a 300 s cache of 10000 tokens and standard roles", () => {
    const config = loadServeConfig(minimal, {});
    expect(config).toMatchObject({
      "auth-strategy": "keystone",
      "allow-insecure-noauth": false,
      "keystone-endpoint": keystone,
      "keystone-user-domain-name": "Default",
      "keystone-project-domain-name": "Default",
      "keystone-timeout": 5,
      "keystone-connect-timeout": 3,
      "token-cache-ttl": 300,
      "token-cache-size": 10000,
    });
    expect(serviceCredentialsFromConfig(config)).toBeUndefined();
    expect(roleNamesFromConfig(config)).toEqual({ reader: "reader", member: "member", admin: "admin" });
  });

  it("requires --keystone-endpoint with the keystone strategy, naming it", () => {
    expect(() => loadServeConfig({ "db-uri": dbUri }, {})).toThrow(
      "invalid option --keystone-endpoint (KEYSTONE_ENDPOINT): is required with --auth-strategy keystone",
    );
  });

  it("reads every auth option from the environment", () => {
    const config = loadServeConfig(
      { "db-uri": dbUri },
      {
        KEYSTONE_ENDPOINT: "https://cloud.example/identity/",
        PICASSO_KEYSTONE_USERNAME: "picasso",
        PICASSO_KEYSTONE_PASSWORD: "s3cret",
        PICASSO_KEYSTONE_PROJECT_NAME: "service",
        PICASSO_KEYSTONE_USER_DOMAIN_NAME: "users",
        PICASSO_KEYSTONE_PROJECT_DOMAIN_NAME: "services",
        PICASSO_KEYSTONE_TIMEOUT: "2.5",
        PICASSO_KEYSTONE_CONNECT_TIMEOUT: "1",
        PICASSO_TOKEN_CACHE_TTL: "0",
        PICASSO_TOKEN_CACHE_SIZE: "50",
        PICASSO_READER_ROLE: "observer",
        PICASSO_MEMBER_ROLE: "_member_",
        PICASSO_ADMIN_ROLE: "cloud-admin",
      },
    );
    expect(config["keystone-endpoint"]).toBe("https://cloud.example/identity");
    expect(config["keystone-timeout"]).toBe(2.5);
    expect(config["token-cache-ttl"]).toBe(0);
    expect(config["token-cache-size"]).toBe(50);
    expect(roleNamesFromConfig(config)).toEqual({
      reader: "observer",
      member: "_member_",
      admin: "cloud-admin",
    });
    expect(serviceCredentialsFromConfig(config)).toEqual({
      kind: "password",
      username: "picasso",
      password: "s3cret",
      userDomainName: "users",
      projectName: "service",
      projectDomainName: "services",
    });
  });

  it("takes an application credential instead of a user", () => {
    const config = loadServeConfig(
      { ...minimal, "keystone-app-credential-id": "abc", "keystone-app-credential-secret": "xyz" },
      {},
    );
    expect(serviceCredentialsFromConfig(config)).toEqual({
      kind: "application_credential",
      id: "abc",
      secret: "xyz",
    });
  });

  it.each([
    [{ "keystone-username": "picasso" }, "--keystone-password (PICASSO_KEYSTONE_PASSWORD): is required with"],
    [
      { "keystone-username": "picasso", "keystone-password": "pw" },
      "--keystone-project-name (PICASSO_KEYSTONE_PROJECT_NAME): is required with --keystone-username",
    ],
    [{ "keystone-password": "pw" }, "--keystone-username (PICASSO_KEYSTONE_USERNAME): is required with"],
    [
      { "keystone-app-credential-id": "abc" },
      "--keystone-app-credential-secret (PICASSO_KEYSTONE_APP_CREDENTIAL_SECRET)",
    ],
    [
      { "keystone-app-credential-secret": "xyz" },
      "--keystone-app-credential-id (PICASSO_KEYSTONE_APP_CREDENTIAL_ID)",
    ],
    [
      {
        "keystone-username": "picasso",
        "keystone-password": "pw",
        "keystone-project-name": "service",
        "keystone-app-credential-id": "abc",
        "keystone-app-credential-secret": "xyz",
      },
      "either an application credential or --keystone-username, not both",
    ],
    [
      { "keystone-endpoint": "keystone:5000" },
      "--keystone-endpoint (KEYSTONE_ENDPOINT): must be an http(s) URL",
    ],
    [{ "auth-strategy": "basic" }, "--auth-strategy (PICASSO_AUTH_STRATEGY): must be keystone or noauth"],
    [{ "token-cache-ttl": "-1" }, "--token-cache-ttl (PICASSO_TOKEN_CACHE_TTL): must not be negative"],
    [{ "token-cache-ttl": "1.5" }, "--token-cache-ttl (PICASSO_TOKEN_CACHE_TTL): must be a whole number"],
    [{ "token-cache-size": "0" }, "--token-cache-size (PICASSO_TOKEN_CACHE_SIZE): must be at least 1"],
    [{ "keystone-timeout": "0" }, "--keystone-timeout (PICASSO_KEYSTONE_TIMEOUT): must be more than 0"],
    [
      { "keystone-connect-timeout": "10" },
      "--keystone-connect-timeout (PICASSO_KEYSTONE_CONNECT_TIMEOUT): must not exceed",
    ],
    [{ "reader-role": " " }, "--reader-role (PICASSO_READER_ROLE): must name a role"],
  ])("rejects %o naming the option", (flags, message) => {
    const attempt = () => loadServeConfig({ ...minimal, ...flags }, {});
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(message);
  });

  it("refuses noauth on a non-loopback host unless explicitly allowed", () => {
    const noauth = { "db-uri": dbUri, "auth-strategy": "noauth" };
    expect(() => loadServeConfig(noauth, {})).toThrow(
      /--auth-strategy \(PICASSO_AUTH_STRATEGY\): noauth checks no token, so it is refused on the non-loopback host 0\.0\.0\.0/,
    );
    expect(() => loadServeConfig({ ...noauth, host: "10.0.0.5" }, {})).toThrow(ConfigError);
    expect(loadServeConfig({ ...noauth, "allow-insecure-noauth": true }, {})["auth-strategy"]).toBe("noauth");
    expect(loadServeConfig(noauth, { PICASSO_ALLOW_INSECURE_NOAUTH: "true" })["allow-insecure-noauth"]).toBe(
      true,
    );
    expect(() => loadServeConfig(noauth, { PICASSO_ALLOW_INSECURE_NOAUTH: "maybe" })).toThrow(
      "--allow-insecure-noauth (PICASSO_ALLOW_INSECURE_NOAUTH): must be true or false",
    );
  });

  it("allows noauth on loopback without a Keystone endpoint, from the environment too", () => {
    for (const host of ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"]) {
      expect(loadServeConfig({ "db-uri": dbUri, "auth-strategy": "noauth", host }, {})["auth-strategy"]).toBe(
        "noauth",
      );
    }
    const config = loadServeConfig(
      {},
      { PICASSO_DB: dbUri, PICASSO_AUTH_STRATEGY: "NOAUTH", PICASSO_HOST: "127.0.0.1" },
    );
    expect(config["auth-strategy"]).toBe("noauth");
  });

  it("knows loopback hosts", () => {
    expect(["127.0.0.1", "localhost", "::1", "::ffff:127.0.0.1"].every(isLoopbackHost)).toBe(true);
    expect(["0.0.0.0", "::", "10.0.0.1", "example.com", "128.0.0.1"].some(isLoopbackHost)).toBe(false);
  });

  it("builds the authenticator the strategy names, and warns loudly about noauth", async () => {
    const logs = captureLogs();
    const noauth = authenticatorFromConfig(
      loadServeConfig({ "db-uri": dbUri, "auth-strategy": "noauth", host: "127.0.0.1" }, {}),
      logs.logger,
    );
    expect(noauth.kind).toBe("noauth");
    expect(logs.text()).toContain("AUTHENTICATION IS DISABLED");
    const keystoneAuth = authenticatorFromConfig(loadServeConfig(minimal, {}), logs.logger);
    expect(keystoneAuth.kind).toBe("keystone");
    expect(keystoneAuth.wwwAuthenticate).toBe('Keystone uri="http://keystone.example:5000"');
    await keystoneAuth.close?.();
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
