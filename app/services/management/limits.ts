/**
 * Bounds and defaults of apps and routes, in one place: the request schemas, the OpenAPI document
 * and the README table all come from these.
 */
export const appLimits = {
  /** What tenants choose; the stored name is `{name}-{project_id}`. */
  namePattern: /^[a-z0-9_-]+$/,
  nameMaxLength: 64,
  descriptionMaxLength: 1024,
} as const;

/** App names as they appear in URLs: `{name}-{project_id}` (project ids may have upper case). */
export const storedAppNamePattern = /^[A-Za-z0-9_-]{1,160}$/;
/** Keystone project ids are 32 hex digits; other clouds use other ids, all URL-safe. */
export const projectIdPattern = /^[A-Za-z0-9_-]{1,64}$/;

export const configLimits = {
  keyPattern: /^[A-Za-z_][A-Za-z0-9_]*$/,
  maxKeys: 64,
  keyMaxLength: 128,
  valueMaxLength: 4096,
  /** Sum of key and value lengths: the engine passes config as environment variables. */
  maxTotalLength: 32_768,
} as const;

export const headerLimits = {
  namePattern: /^[A-Za-z0-9][A-Za-z0-9-]*$/,
  nameMaxLength: 64,
  maxNames: 32,
  maxValuesPerName: 16,
  valueMaxLength: 1024,
  /** Visible ASCII, space and tab: nothing that could split a response header. */
  valuePattern: /^[\t\x20-\x7e]*$/,
  /** The engine copies route headers onto responses: these would break the response's framing. */
  forbidden: ["Connection", "Content-Length", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade"],
} as const;

export const routeLimits = {
  pathMaxLength: 200,
  maxSegments: 16,
  segmentMaxLength: 64,
  segmentPattern: /^[A-Za-z0-9._~-]+$/,
  imageMaxLength: 512,
  /** Docker image references: registry[:port]/name[:tag][@digest]; no whitespace or control characters. */
  imagePattern: /^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/,
  descriptionMaxLength: 1024,
  memory: { min: 8, max: 8192, default: 128 },
  timeout: { min: 1, max: 300, default: 30 },
  idleTimeout: { min: 1, max: 3600, default: 30 },
  maxConcurrency: { min: 1, max: 100, default: 1 },
  /** Per-route invocation body limit in bytes; a route without one uses `--max-invoke-body`. */
  maxBodyBytes: { min: 1, max: 4 * 1024 ** 3 },
  /** Invocations per second per caller; a route without one uses the server's default. */
  rateLimit: { min: 1, max: 100_000 },
  /** Invocations allowed at once above `rateLimit`; a route without one uses the server's default. */
  rateLimitBurst: { min: 0, max: 1_000_000 },
} as const;

export const pageLimits = { default: 100, max: 1000 } as const;
