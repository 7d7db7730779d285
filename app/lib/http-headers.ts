/**
 * Header rules for proxying. Hop-by-hop headers describe one connection and must not cross the
 * proxy (RFC 9110 7.6.1); credentials meant for Picasso must not reach tenant code.
 */
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
]);

/** Never forwarded to the engine: Picasso's own credentials and what the engine sets itself. */
const neverToEngine = new Set([
  ...hopByHop,
  "host",
  "x-auth-token",
  "x-subject-token",
  "cookie",
  "authorization",
  // undici refuses it; Node's server has already answered any 100-continue.
  "expect",
  "x-openstack-request-id",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
]);

/** Forwarded only for routes with `forward_auth_headers`: the function authenticates its own users. */
const forwardableAuth = new Set(["authorization", "cookie"]);

function blocked(name: string, forwardAuth: boolean): boolean {
  return neverToEngine.has(name) && !(forwardAuth && forwardableAuth.has(name));
}

const noneListed: ReadonlySet<string> = new Set();

/** Names listed in `Connection` are hop-by-hop too. */
function connectionListed(connection: string | null | undefined): ReadonlySet<string> {
  // Nearly every peer sends just `keep-alive` or `close`: options, not header names.
  if (!connection || connection === "keep-alive" || connection === "close") return noneListed;
  const listed = new Set<string>();
  for (const name of connection.split(",")) {
    const trimmed = name.trim().toLowerCase();
    if (trimmed) listed.add(trimmed);
  }
  return listed;
}

/** Headers of the client's request that go to the engine, as a flat name/value list. */
export function engineRequestHeaders(incoming: Headers, forwardAuth = false): Record<string, string> {
  const listed = connectionListed(incoming.get("connection"));
  const out: Record<string, string> = {};
  incoming.forEach((value, name) => {
    if (blocked(name, forwardAuth) || listed.has(name)) return;
    out[name] = value;
  });
  return out;
}

/** The same rule over Node's flat raw header list, for the fast path (no Headers object built). */
export function engineRequestRawHeaders(rawHeaders: readonly string[], forwardAuth = false): string[] {
  let listed: ReadonlySet<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === "connection") {
      listed = connectionListed(rawHeaders[i + 1]);
      break;
    }
  }
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (blocked(name, forwardAuth) || listed?.has(name)) continue;
    out.push(name, rawHeaders[i + 1] as string);
  }
  return out;
}

/** Headers of the engine's response as a plain object for `writeHead`, without hop-by-hop ones. */
export function clientResponseHeaderRecord(
  upstream: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const connection = upstream.connection;
  const listed = connection
    ? connectionListed(Array.isArray(connection) ? connection.join(",") : connection)
    : null;
  const out: Record<string, string | string[]> = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || hopByHop.has(name) || listed?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Headers of the engine's response that go back to the client, for a Fetch Response. */
export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(clientResponseHeaderRecord(upstream))) {
    if (Array.isArray(value)) for (const item of value) out.append(name, item);
    else out.set(name, value);
  }
  return out;
}
