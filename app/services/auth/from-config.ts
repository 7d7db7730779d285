import type { ServeConfig } from "../../config.ts";
import type { Logger } from "../../lib/logger.ts";
import { KeystoneAuthenticator } from "../keystone/authenticator.ts";
import type { ServiceCredentials } from "../keystone/service-token.ts";
import type { Metrics } from "../metrics/index.ts";
import { createNoAuthAuthenticator } from "../noauth/index.ts";
import type { Authenticator, RoleNames } from "./types.ts";

export function roleNamesFromConfig(config: ServeConfig): RoleNames {
  return { reader: config["reader-role"], member: config["member-role"], admin: config["admin-role"] };
}

export function serviceCredentialsFromConfig(config: ServeConfig): ServiceCredentials | undefined {
  const username = config["keystone-username"];
  const password = config["keystone-password"];
  const projectName = config["keystone-project-name"];
  if (username && password && projectName) {
    return {
      kind: "password",
      username,
      password,
      userDomainName: config["keystone-user-domain-name"],
      projectName,
      projectDomainName: config["keystone-project-domain-name"],
    };
  }
  const id = config["keystone-app-credential-id"];
  const secret = config["keystone-app-credential-secret"];
  if (id && secret) return { kind: "application_credential", id, secret };
  return undefined;
}

/**
 * The authenticator `serve` uses. Builds without contacting Keystone: the process must start
 * while Keystone is down (requests then get 503 until it is back).
 */
export function authenticatorFromConfig(
  config: ServeConfig,
  logger: Logger,
  metrics?: Pick<Metrics, "keystoneRequests" | "tokenCache">,
): Authenticator & { close?(): Promise<void>; warmUp?(): Promise<void> } {
  const roleNames = roleNamesFromConfig(config);
  if (config["auth-strategy"] === "noauth") {
    logger.warn(
      "AUTHENTICATION IS DISABLED (--auth-strategy noauth): every request acts as a member of the " +
        "project in its URL; never use this outside development",
      { host: config.host },
    );
    return createNoAuthAuthenticator(roleNames);
  }
  const endpoint = config["keystone-endpoint"];
  // The config schema guarantees it; this keeps a programming error from passing silently.
  if (!endpoint) throw new Error("--keystone-endpoint is required with --auth-strategy keystone");
  return new KeystoneAuthenticator({
    endpoint,
    serviceCredentials: serviceCredentialsFromConfig(config),
    logger,
    timeoutMs: config["keystone-timeout"] * 1000,
    connectTimeoutMs: config["keystone-connect-timeout"] * 1000,
    cacheTtlMs: config["token-cache-ttl"] * 1000,
    cacheSize: config["token-cache-size"],
    metrics,
  });
}
