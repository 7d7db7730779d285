/**
 * The quotas a project has, their bounds and how refusals read: the config options, the request
 * schemas, the OpenAPI document and the README all come from these.
 */
export const quotaNames = ["apps", "routes_per_app", "concurrent_invocations"] as const;
export type QuotaName = (typeof quotaNames)[number];

/** Effective limits: -1 is unlimited (as in Nova), 0 allows nothing. */
export type QuotaLimits = Record<QuotaName, number>;

/** What an admin stored for a project; null (or absent) means the configured default. */
export type QuotaOverrides = Record<QuotaName, number | null>;

export const unlimited = -1;

export const quotaBounds = { min: -1, max: 1_000_000 } as const;

/** What each limit counts, for messages: "already used 10 of 10 apps". */
export const quotaUnits: Record<QuotaName, string> = {
  apps: "apps",
  routes_per_app: "routes",
  concurrent_invocations: "invocations",
};

export const withinLimit = (limit: number, used: number, requested = 1) =>
  limit === unlimited || used + requested <= limit;

/** Nova's wording, so operators and clients read the same sentence they know. */
export function quotaExceededMessage(name: QuotaName, limit: number, used: number, requested = 1): string {
  return `Quota exceeded for ${name}: requested ${requested}, but already used ${used} of ${limit} ${quotaUnits[name]}`;
}
