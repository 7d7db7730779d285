/**
 * The only module that reads `process.env`. Every setting has one entry in `options`: its flag,
 * environment variable, default and description; the CLI builds its arguments from the same table,
 * and one zod schema validates the merged result (flag beats env beats default).
 */
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { routeLimits } from "./services/management/limits.ts";
import { quotaBounds } from "./services/quotas/limits.ts";
import { parseTrustedProxies } from "./services/rate-limit/client-address.ts";

export type OptionSpec = {
  /** Environment variable consulted when the flag is absent. */
  env?: string;
  default?: string;
  description: string;
  /** Takes no value (`--flag`); the environment value must be true/false/1/0. */
  boolean?: boolean;
};

export const logLevels = ["trace", "debug", "info", "warning", "error", "critical"] as const;
export type LogLevel = (typeof logLevels)[number];

const logLevelAliases: Record<string, LogLevel> = { warn: "warning", fatal: "critical" };

export const serveOptions = {
  host: { env: "PICASSO_HOST", default: "0.0.0.0", description: "API service bind host." },
  port: { env: "PICASSO_PORT", default: "10001", description: "API service bind port." },
  "db-uri": {
    env: "PICASSO_DB",
    description: "Picasso persistence storage URI (mysql:// or mysql+pymysql://).",
  },
  "auth-strategy": {
    env: "PICASSO_AUTH_STRATEGY",
    default: "keystone",
    description: "keystone, or noauth (development only: no token checked, project taken from the URL).",
  },
  "allow-insecure-noauth": {
    env: "PICASSO_ALLOW_INSECURE_NOAUTH",
    boolean: true,
    description: "Allow --auth-strategy noauth on a host that is not a loopback address.",
  },
  "keystone-endpoint": {
    env: "KEYSTONE_ENDPOINT",
    description: "OpenStack Identity service endpoint, with or without /v3 (required for keystone).",
  },
  "keystone-username": {
    env: "PICASSO_KEYSTONE_USERNAME",
    description: "Picasso's service user; without service credentials each token validates itself.",
  },
  "keystone-password": {
    env: "PICASSO_KEYSTONE_PASSWORD",
    description: "Password of the service user (prefer the environment: flags show in ps).",
  },
  "keystone-project-name": {
    env: "PICASSO_KEYSTONE_PROJECT_NAME",
    description: "Project the service user's token is scoped to (usually service).",
  },
  "keystone-user-domain-name": {
    env: "PICASSO_KEYSTONE_USER_DOMAIN_NAME",
    default: "Default",
    description: "Domain of the service user.",
  },
  "keystone-project-domain-name": {
    env: "PICASSO_KEYSTONE_PROJECT_DOMAIN_NAME",
    default: "Default",
    description: "Domain of the service user's project.",
  },
  "keystone-app-credential-id": {
    env: "PICASSO_KEYSTONE_APP_CREDENTIAL_ID",
    description: "Application credential id, instead of a service user and password.",
  },
  "keystone-app-credential-secret": {
    env: "PICASSO_KEYSTONE_APP_CREDENTIAL_SECRET",
    description: "Application credential secret.",
  },
  "keystone-timeout": {
    env: "PICASSO_KEYSTONE_TIMEOUT",
    default: "5",
    description: "Seconds a Keystone request may take in all.",
  },
  "keystone-connect-timeout": {
    env: "PICASSO_KEYSTONE_CONNECT_TIMEOUT",
    default: "3",
    description: "Seconds to open a connection to Keystone.",
  },
  "token-cache-ttl": {
    env: "PICASSO_TOKEN_CACHE_TTL",
    default: "300",
    description: "Seconds a validated token is trusted without asking Keystone again (0: no cache).",
  },
  "token-cache-size": {
    env: "PICASSO_TOKEN_CACHE_SIZE",
    default: "10000",
    description: "Most tokens kept in the validation cache (least recently used go first).",
  },
  "reader-role": {
    env: "PICASSO_READER_ROLE",
    default: "reader",
    description: "Keystone role that may read a project's apps and routes.",
  },
  "member-role": {
    env: "PICASSO_MEMBER_ROLE",
    default: "member",
    description: "Keystone role that may also change them and invoke private routes.",
  },
  "admin-role": {
    env: "PICASSO_ADMIN_ROLE",
    default: "admin",
    description: "Keystone role that, on a project-scoped token, may act on any project.",
  },
  "functions-url": {
    env: "FUNCTIONS_URL",
    default: "http://localhost:8080/v1",
    description:
      "Function engine: IronFunctions API URL (http(s)://host:port/v1), or local:<directory> to run functions as local processes (development).",
  },
  "functions-jwt-key": {
    env: "FUNCTIONS_JWT_KEY",
    description:
      "JWT_AUTH_KEY of the IronFunctions server, if it checks tokens (prefer the environment: flags show in ps).",
  },
  "functions-timeout": {
    env: "PICASSO_FUNCTIONS_TIMEOUT",
    default: "10",
    description: "Seconds a management call to IronFunctions may take in all.",
  },
  "functions-connect-timeout": {
    env: "PICASSO_FUNCTIONS_CONNECT_TIMEOUT",
    default: "3",
    description: "Seconds to open a connection to IronFunctions.",
  },
  "public-url": {
    env: "PICASSO_PUBLIC_URL",
    description: "Base URL clients reach this API at, for links (default: each request's own origin).",
  },
  "log-level": {
    env: "PICASSO_LOG_LEVEL",
    default: "INFO",
    description: "Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.",
  },
  "log-file": { env: "PICASSO_LOG_FILE", description: "Log file path (default: standard error)." },
  "log-format": { env: "PICASSO_LOG_FORMAT", default: "text", description: "Log format: text or json." },
  "shutdown-timeout": {
    env: "PICASSO_SHUTDOWN_TIMEOUT",
    default: "30",
    description: "Seconds to let in-flight requests finish after SIGTERM/SIGINT.",
  },
  "max-invoke-body": {
    env: "PICASSO_MAX_INVOKE_BODY",
    default: "32MiB",
    description: "Largest request body forwarded to a function (bytes, or with KiB/MiB/GiB).",
  },
  "quota-apps": {
    env: "PICASSO_QUOTA_APPS",
    default: "100",
    description: "Apps a project may have unless an admin set its quota (-1: unlimited).",
  },
  "quota-routes-per-app": {
    env: "PICASSO_QUOTA_ROUTES_PER_APP",
    default: "100",
    description: "Routes each app may have unless an admin set the project's quota (-1: unlimited).",
  },
  "quota-concurrent-invocations": {
    env: "PICASSO_QUOTA_CONCURRENT_INVOCATIONS",
    default: "100",
    description:
      "Invocations of a project's routes running at once unless an admin set its quota (-1: unlimited); more get 429.",
  },
  "route-cache-ttl": {
    env: "PICASSO_ROUTE_CACHE_TTL",
    default: "5",
    description:
      "Seconds an invocation may use a cached route; bounds how long other instances' changes go unseen. 0 disables.",
  },
  "invoke-timeout-margin": {
    env: "PICASSO_INVOKE_TIMEOUT_MARGIN",
    default: "2",
    description: "Seconds added to a route's timeout before the gateway gives up with 504.",
  },
  "shutdown-delay": {
    env: "PICASSO_SHUTDOWN_DELAY",
    default: "0",
    description:
      "Seconds to keep serving after SIGTERM while /healthcheck answers 503, so load balancers stop sending requests before the listener closes.",
  },
  "header-timeout": {
    env: "PICASSO_HEADER_TIMEOUT",
    default: "60",
    description: "Seconds a client has to send a request's headers (slow clients get 408).",
  },
  "body-timeout": {
    env: "PICASSO_BODY_TIMEOUT",
    default: "60",
    description:
      "Seconds a client may send nothing while Picasso waits for more of its request body (then 408, or the connection is closed if the answer has started).",
  },
  "keepalive-timeout": {
    env: "PICASSO_KEEPALIVE_TIMEOUT",
    default: "75",
    description: "Seconds an idle keep-alive connection stays open; keep it above the load balancer's.",
  },
  "max-header-size": {
    env: "PICASSO_MAX_HEADER_SIZE",
    default: "16384",
    description: "Largest request header section in bytes; larger requests get 431.",
  },
  metrics: {
    env: "PICASSO_METRICS",
    default: "on",
    description: "Serve Prometheus metrics at /metrics (unauthenticated): on or off.",
  },
  "healthcheck-cache": {
    env: "PICASSO_HEALTHCHECK_CACHE",
    default: "5",
    description: "Seconds a detailed /healthcheck result is reused, so probes cannot overload dependencies.",
  },
  "healthcheck-timeout": {
    env: "PICASSO_HEALTHCHECK_TIMEOUT",
    default: "3",
    description: "Seconds each dependency gets to answer a detailed /healthcheck.",
  },
  "rate-limit-public": {
    env: "PICASSO_RATE_LIMIT_PUBLIC",
    default: "50",
    description:
      "Public invocations per second per route and client address, for routes without rate_limit (0: no limit).",
  },
  "rate-limit-public-burst": {
    env: "PICASSO_RATE_LIMIT_PUBLIC_BURST",
    default: "100",
    description: "Public invocations allowed at once above that rate, for routes without rate_limit_burst.",
  },
  "rate-limit-private": {
    env: "PICASSO_RATE_LIMIT_PRIVATE",
    default: "200",
    description:
      "Private invocations per second per route and project, for routes without rate_limit (0: no limit).",
  },
  "rate-limit-private-burst": {
    env: "PICASSO_RATE_LIMIT_PRIVATE_BURST",
    default: "400",
    description: "Private invocations allowed at once above that rate, for routes without rate_limit_burst.",
  },
  "trusted-proxies": {
    env: "PICASSO_TRUSTED_PROXIES",
    description:
      "Comma-separated IP addresses or CIDRs of proxies whose X-Forwarded-For names the client (default: none).",
  },
  "redis-url": {
    env: "PICASSO_REDIS_URL",
    description:
      "Redis holding the rate limit counters, shared by all instances (redis:// or rediss://; default: in memory, per instance).",
  },
  "rate-limit-on-redis-failure": {
    env: "PICASSO_RATE_LIMIT_ON_REDIS_FAILURE",
    default: "open",
    description:
      "When Redis (--redis-url) fails: open lets invocations through without rate limit or concurrency count, closed answers 503.",
  },
} satisfies Record<string, OptionSpec>;

export const migrateOptions = {
  "db-uri": serveOptions["db-uri"],
  "log-level": serveOptions["log-level"],
  "log-file": serveOptions["log-file"],
  "log-format": serveOptions["log-format"],
} satisfies Record<string, OptionSpec>;

/** The functions shipped with Picasso, found from the package, whatever the working directory. */
export const exampleFunctionsDir = fileURLToPath(new URL("../examples/functions", import.meta.url));

/**
 * `picasso-api dev`: a fixed, local setup. It reads no serve variable but PICASSO_DB, so a shell
 * prepared for `serve` cannot point it at another engine or bind it elsewhere by accident.
 */
export const devOptions = {
  host: {
    default: "127.0.0.1",
    description: "Bind address. Anything but loopback needs --allow-insecure-noauth: dev checks no token.",
  },
  port: { default: "10001", description: "Bind port." },
  "db-uri": {
    env: "PICASSO_DB",
    default: "mysql://root@127.0.0.1:3306/picasso_dev",
    description: "Database, created and migrated if needed.",
  },
  "functions-url": {
    default: `local:${exampleFunctionsDir}`,
    description: "Function engine; default: the local runner over Picasso's examples/functions.",
  },
  "log-level": { default: "INFO", description: "Log level: DEBUG shows function stderr." },
  "allow-insecure-noauth": {
    boolean: true,
    description:
      "Serve without authentication on a non-loopback --host (anyone reaching it owns every project).",
  },
} satisfies Record<string, OptionSpec>;

export const reconcileOptions = {
  "db-uri": serveOptions["db-uri"],
  "functions-url": serveOptions["functions-url"],
  "functions-jwt-key": serveOptions["functions-jwt-key"],
  "functions-timeout": serveOptions["functions-timeout"],
  "functions-connect-timeout": serveOptions["functions-connect-timeout"],
  "log-level": serveOptions["log-level"],
  "log-file": serveOptions["log-file"],
  "log-format": serveOptions["log-format"],
} satisfies Record<string, OptionSpec>;

/** The original's env files say `mysql+pymysql://`; the driver here only knows `mysql://`. */
export function normaliseDbUri(raw: string): string {
  const uri = raw.trim().replace(/^mysql\+[a-z0-9]+:\/\//i, "mysql://");
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error("must be a URI like mysql://user:password@host:3306/database");
  }
  if (url.protocol !== "mysql:") throw new Error("must start with mysql:// or mysql+pymysql://");
  if (!url.hostname) throw new Error("must name a host");
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z0-9_$-]{1,64}$/.test(database)) throw new Error("must name a database, e.g. /picasso");
  return url.toString();
}

/** For messages and readiness output: the URI without its password. */
export function redactUri(uri: string): string {
  try {
    const url = new URL(uri);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return "<unparseable>";
  }
}

const dbUri = z.string().transform((value, ctx) => {
  try {
    return normaliseDbUri(value);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

const httpUrl = z
  .string()
  .trim()
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === "http:" || url.protocol === "https:") && !url.username && !url.password;
    } catch {
      return false;
    }
  }, "must be an http(s) URL without credentials")
  .transform((value) => value.replace(/\/+$/, ""));

export type FunctionsTarget = { kind: "http"; url: string } | { kind: "local"; directory: string };

/**
 * `--functions-url` picks the engine: `http(s)://...` is IronFunctions, `local:<directory>` the
 * local runner over an existing directory (relative to `cwd`). Throws with the reason.
 */
export function parseFunctionsUrl(raw: string, cwd: string = process.cwd()): FunctionsTarget {
  const value = raw.trim();
  if (/^local:/i.test(value)) {
    const given = value.slice("local:".length);
    if (given === "") throw new Error("local: must name a directory, e.g. local:./functions");
    const directory = resolve(cwd, given);
    let isDirectory = false;
    try {
      isDirectory = statSync(directory).isDirectory();
    } catch {
      throw new Error(`the functions directory ${directory} does not exist`);
    }
    if (!isDirectory) throw new Error(`${directory} is not a directory`);
    return { kind: "local", directory };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error("must be an http(s) URL without credentials, or local:<directory>");
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.username || url.password) {
    throw new Error("must be an http(s) URL without credentials, or local:<directory>");
  }
  const trimmed = value.replace(/\/+$/, "");
  if (!new URL(trimmed).pathname.endsWith("/v1")) {
    throw new Error(
      "must be the IronFunctions API URL ending in /v1, e.g. http://localhost:8080/v1, or local:<directory>",
    );
  }
  return { kind: "http", url: trimmed };
}

/** `local:` directories come out absolute, so the engine never depends on a later cwd. */
const functionsUrl = z.string().transform((value, ctx) => {
  try {
    const target = parseFunctionsUrl(value);
    return target.kind === "local" ? `local:${target.directory}` : target.url;
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

/**
 * The only part of Picasso's environment function processes get: enough to find interpreters
 * (`#!/usr/bin/env node`) and decode text. Everything else (secrets included) stays out.
 */
export function functionBaseEnv(env: Record<string, string | undefined> = process.env): {
  PATH: string;
  LANG: string;
} {
  return { PATH: env.PATH || "/usr/local/bin:/usr/bin:/bin", LANG: env.LANG || "C.UTF-8" };
}

const logLevel = z
  .string()
  .transform((value) => value.trim().toLowerCase())
  .transform((value) => logLevelAliases[value] ?? value)
  .pipe(z.enum(logLevels, { error: "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL" }));

const seconds = z.coerce
  .number({ error: "must be a number of seconds" })
  .min(0, "must not be negative")
  .max(3600, "must be at most 3600");

const byteUnits: Record<string, number> = {
  "": 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  ki: 1024,
  mi: 1024 ** 2,
  gi: 1024 ** 3,
};

const byteSize = z.string().transform((value, ctx) => {
  const match = /^\s*(\d+)\s*(k|m|g|ki|mi|gi)?b?\s*$/i.exec(value);
  const bytes = match ? Number(match[1]) * (byteUnits[(match[2] ?? "").toLowerCase()] ?? 1) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    ctx.addIssue({ code: "custom", message: "must be a size such as 1048576, 512KiB, 32MiB or 1GiB" });
    return z.NEVER;
  }
  return bytes;
});

/** A count quota as Nova spells it: -1 is unlimited, 0 allows nothing. */
const quotaLimitMessage = `must be an integer from ${quotaBounds.min} (unlimited) to ${quotaBounds.max}`;
const quotaLimit = z.coerce
  .number({ error: quotaLimitMessage })
  .int(quotaLimitMessage)
  .min(quotaBounds.min, quotaLimitMessage)
  .max(quotaBounds.max, quotaLimitMessage);

const positiveSeconds = seconds.refine((value) => value > 0, "must be more than 0");

const onOff = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["on", "off", "true", "false", "1", "0", "yes", "no"], { error: "must be on or off" }))
  .transform((value) => value === "on" || value === "true" || value === "1" || value === "yes");

const optionalText = z
  .string()
  .trim()
  .transform((value) => value || undefined)
  .optional();

const roleName = z.string().trim().min(1, "must name a role").max(255, "must be at most 255 characters");

const flag = z.union(
  [
    z.boolean(),
    z
      .string()
      .trim()
      .toLowerCase()
      .pipe(z.enum(["true", "false", "1", "0", "yes", "no"]))
      .transform((value) => value === "true" || value === "1" || value === "yes"),
  ],
  { error: "must be true or false" },
);

/** Loopback hosts only: noauth anywhere else would hand every project to the network. */
export function isLoopbackHost(host: string): boolean {
  const bare = host
    .trim()
    .replace(/^\[(.*)\]$/, "$1")
    .toLowerCase();
  return (
    bare === "localhost" ||
    bare === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare) ||
    /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare)
  );
}

const defaultRate = z.coerce
  .number({ error: "must be a number of invocations per second" })
  .int("must be an integer")
  .min(0, `must be between 0 and ${routeLimits.rateLimit.max}`)
  .max(routeLimits.rateLimit.max, `must be between 0 and ${routeLimits.rateLimit.max}`);

const defaultBurst = z.coerce
  .number({ error: "must be a number of invocations" })
  .int("must be an integer")
  .min(routeLimits.rateLimitBurst.min, `must be between 0 and ${routeLimits.rateLimitBurst.max}`)
  .max(routeLimits.rateLimitBurst.max, `must be between 0 and ${routeLimits.rateLimitBurst.max}`);

/** Each entry checked here, so a typo stops the command instead of trusting nobody (or everybody). */
const trustedProxies = z
  .string()
  .optional()
  .transform((value, ctx) => {
    try {
      return parseTrustedProxies(value ?? "");
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
      return z.NEVER;
    }
  });

const redisUrl = z
  .string()
  .trim()
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === "redis:" || url.protocol === "rediss:") && url.hostname !== "";
    } catch {
      return false;
    }
  }, "must be a URL like redis://host:6379 or rediss://user:password@host:6380/0");

const serveConfigFields = z.object({
  host: z.string().trim().min(1, "must not be empty"),
  port: z.coerce
    .number({ error: "must be a port number" })
    .int("must be an integer")
    .min(0, "must be between 0 and 65535")
    .max(65535, "must be between 0 and 65535"),
  "db-uri": dbUri,
  "auth-strategy": z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(["keystone", "noauth"], { error: "must be keystone or noauth" })),
  "allow-insecure-noauth": flag.default(false),
  "keystone-endpoint": httpUrl.optional(),
  "keystone-username": optionalText,
  "keystone-password": z.string().min(1).optional(),
  "keystone-project-name": optionalText,
  "keystone-user-domain-name": z.string().trim().min(1, "must name a domain"),
  "keystone-project-domain-name": z.string().trim().min(1, "must name a domain"),
  "keystone-app-credential-id": optionalText,
  "keystone-app-credential-secret": z.string().min(1).optional(),
  "keystone-timeout": z.coerce
    .number({ error: "must be a number of seconds" })
    .positive("must be more than 0")
    .max(300, "must be at most 300"),
  "keystone-connect-timeout": z.coerce
    .number({ error: "must be a number of seconds" })
    .positive("must be more than 0")
    .max(300, "must be at most 300"),
  "token-cache-ttl": z.coerce
    .number({ error: "must be a number of seconds" })
    .int("must be a whole number of seconds")
    .min(0, "must not be negative")
    .max(86_400, "must be at most 86400"),
  "token-cache-size": z.coerce
    .number({ error: "must be a number" })
    .int("must be an integer")
    .min(1, "must be at least 1")
    .max(10_000_000, "must be at most 10000000"),
  "reader-role": roleName,
  "member-role": roleName,
  "admin-role": roleName,
  "functions-url": functionsUrl,
  "functions-jwt-key": z.string().min(1, "must not be empty").optional(),
  "functions-timeout": z.coerce
    .number({ error: "must be a number of seconds" })
    .min(0.1, "must be at least 0.1")
    .max(300, "must be at most 300"),
  "functions-connect-timeout": z.coerce
    .number({ error: "must be a number of seconds" })
    .min(0.1, "must be at least 0.1")
    .max(60, "must be at most 60"),
  "public-url": httpUrl.optional(),
  "log-level": logLevel,
  "log-file": z.string().min(1).optional(),
  "log-format": z.enum(["text", "json"], { error: "must be text or json" }),
  "shutdown-timeout": seconds,
  "max-invoke-body": byteSize,
  "quota-apps": quotaLimit,
  "quota-routes-per-app": quotaLimit,
  "quota-concurrent-invocations": quotaLimit,
  "route-cache-ttl": seconds,
  "invoke-timeout-margin": seconds,
  "shutdown-delay": seconds,
  "header-timeout": positiveSeconds,
  "body-timeout": positiveSeconds,
  "keepalive-timeout": positiveSeconds,
  "max-header-size": z.coerce
    .number({ error: "must be a number of bytes" })
    .int("must be an integer")
    .min(1024, "must be at least 1024")
    .max(1048576, "must be at most 1048576"),
  metrics: onOff,
  "healthcheck-cache": seconds,
  "healthcheck-timeout": positiveSeconds,
  "rate-limit-public": defaultRate,
  "rate-limit-public-burst": defaultBurst,
  "rate-limit-private": defaultRate,
  "rate-limit-private-burst": defaultBurst,
  "trusted-proxies": trustedProxies,
  "redis-url": redisUrl.optional(),
  "rate-limit-on-redis-failure": z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(["open", "closed"], { error: "must be open or closed" })),
});

type ServeFields = z.infer<typeof serveConfigFields>;

/** Rules that tie options together; each issue names the option the operator must change. */
function checkAuthOptions(config: ServeFields, ctx: z.RefinementCtx) {
  const issue = (option: keyof ServeFields, message: string) =>
    ctx.addIssue({ code: "custom", path: [option], message });
  if (config["auth-strategy"] === "noauth") {
    if (!config["allow-insecure-noauth"] && !isLoopbackHost(config.host)) {
      issue(
        "auth-strategy",
        `noauth checks no token, so it is refused on the non-loopback host ${config.host}; ` +
          "bind --host 127.0.0.1 or add --allow-insecure-noauth",
      );
    }
    return;
  }
  if (!config["keystone-endpoint"]) {
    issue("keystone-endpoint", "is required with --auth-strategy keystone");
    return;
  }
  const username = config["keystone-username"];
  const credentialId = config["keystone-app-credential-id"];
  if (username && credentialId) {
    issue(
      "keystone-app-credential-id",
      "give either an application credential or --keystone-username, not both",
    );
  } else if (username) {
    if (!config["keystone-password"]) issue("keystone-password", "is required with --keystone-username");
    else if (!config["keystone-project-name"])
      issue("keystone-project-name", "is required with --keystone-username (e.g. service)");
  } else if (credentialId) {
    if (!config["keystone-app-credential-secret"])
      issue("keystone-app-credential-secret", "is required with --keystone-app-credential-id");
  } else if (config["keystone-password"]) {
    issue("keystone-username", "is required with --keystone-password");
  } else if (config["keystone-app-credential-secret"]) {
    issue("keystone-app-credential-id", "is required with --keystone-app-credential-secret");
  }
  if (config["keystone-connect-timeout"] > config["keystone-timeout"]) {
    issue("keystone-connect-timeout", "must not exceed --keystone-timeout");
  }
}

export const serveConfigSchema = serveConfigFields.superRefine(checkAuthOptions);

export const migrateConfigSchema = serveConfigFields.pick({
  "db-uri": true,
  "log-level": true,
  "log-file": true,
  "log-format": true,
});

export const reconcileConfigSchema = serveConfigFields.pick({
  "db-uri": true,
  "functions-url": true,
  "functions-jwt-key": true,
  "functions-timeout": true,
  "functions-connect-timeout": true,
  "log-level": true,
  "log-file": true,
  "log-format": true,
});

export type ServeConfig = z.infer<typeof serveConfigSchema>;
export type ReconcileConfig = z.infer<typeof reconcileConfigSchema>;
export type MigrateConfig = z.infer<typeof migrateConfigSchema>;
export type LogConfig = Pick<ServeConfig, "log-level" | "log-file" | "log-format">;

export class ConfigError extends Error {
  override name = "ConfigError";
}

type FlagValues = Record<string, string | boolean | undefined>;

/** Merges flags, environment and defaults for the options in `specs`, flag first. */
export function mergeOptionSources(
  specs: Record<string, OptionSpec>,
  flags: FlagValues,
  env: Record<string, string | undefined> = process.env,
): Record<string, string | boolean | undefined> {
  const merged: Record<string, string | boolean | undefined> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const fromFlag = flags[name];
    const fromEnv = spec.env ? env[spec.env] : undefined;
    const value = fromFlag ?? (fromEnv === "" ? undefined : fromEnv) ?? spec.default;
    merged[name] = value;
  }
  return merged;
}

/** Validates merged options; the error names the option by its flag and environment variable. */
export function parseOptions<S extends z.ZodType>(
  schema: S,
  specs: Record<string, OptionSpec>,
  flags: FlagValues,
  env: Record<string, string | undefined> = process.env,
): z.infer<S> {
  const merged = mergeOptionSources(specs, flags, env);
  const result = schema.safeParse(merged);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const name = String(issue?.path[0] ?? "");
  const spec = specs[name];
  const where = spec?.env ? `--${name} (${spec.env})` : `--${name}`;
  // A cross-option rule explains itself; a plain missing value is just "required".
  const message = merged[name] === undefined && issue?.code !== "custom" ? "is required" : issue?.message;
  throw new ConfigError(`invalid option ${where}: ${message}`);
}

export const loadServeConfig = (flags: FlagValues, env?: Record<string, string | undefined>) =>
  parseOptions(serveConfigSchema, serveOptions, flags, env);

/**
 * The serve configuration `dev` runs with: its own options and defaults, authentication `noauth`,
 * every other serve option at its default (serve's environment variables are not read).
 */
export function loadDevConfig(
  flags: FlagValues,
  env: Record<string, string | undefined> = process.env,
): ServeConfig {
  const specs: Record<string, OptionSpec> = { ...serveOptions, ...devOptions };
  const devEnv: Record<string, string | undefined> = {};
  for (const spec of Object.values(devOptions) as OptionSpec[]) {
    if (spec.env) devEnv[spec.env] = env[spec.env];
  }
  const onlyDevVariables = Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => [
      name,
      devEnv[spec.env ?? ""] === undefined ? { ...spec, env: undefined } : spec,
    ]),
  );
  return parseOptions(serveConfigSchema, onlyDevVariables, { ...flags, "auth-strategy": "noauth" }, devEnv);
}

export const loadMigrateConfig = (flags: FlagValues, env?: Record<string, string | undefined>) =>
  parseOptions(migrateConfigSchema, migrateOptions, flags, env);

export const loadReconcileConfig = (flags: FlagValues, env?: Record<string, string | undefined>) =>
  parseOptions(reconcileConfigSchema, reconcileOptions, flags, env);

/** The IronFunctions driver's settings, shared by `serve` and `reconcile`. */
export function engineOptions(
  config: Pick<
    ServeConfig,
    "functions-url" | "functions-jwt-key" | "functions-timeout" | "functions-connect-timeout"
  > &
    Partial<Pick<ServeConfig, "invoke-timeout-margin">>,
) {
  return {
    // reconcile never invokes; only serve sets the margin.
    invokeTimeoutMarginMs: Math.round((config["invoke-timeout-margin"] ?? 2) * 1000),
    url: config["functions-url"],
    jwtKey: config["functions-jwt-key"],
    requestTimeoutMs: Math.round(config["functions-timeout"] * 1000),
    connectTimeoutMs: Math.round(config["functions-connect-timeout"] * 1000),
  };
}

/** drizzle-kit reads the same variable the original's alembic did. */
export function migrationsDbUri(env: Record<string, string | undefined> = process.env): string {
  const raw = env.PICASSO_MIGRATIONS_DB ?? env.PICASSO_DB;
  if (!raw) throw new ConfigError("set PICASSO_MIGRATIONS_DB to mysql://user:password@host/database");
  try {
    return normaliseDbUri(raw);
  } catch (error) {
    throw new ConfigError(`invalid PICASSO_MIGRATIONS_DB: ${(error as Error).message}`);
  }
}
