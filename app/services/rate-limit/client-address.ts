import { BlockList, isIP } from "node:net";

/** The proxies allowed to say who the client is (`--trusted-proxies`); null trusts none. */
export type TrustedProxies = BlockList | null;

/**
 * `10.0.0.1, 10.1.0.0/16, fd00::/8`: IPv4 and IPv6 addresses and CIDRs, comma-separated. Throws
 * naming the first entry that is neither, so a typo cannot silently trust nobody (or everybody).
 */
export function parseTrustedProxies(raw: string): TrustedProxies {
  const entries = raw
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0) return null;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = "", prefix, extra] = entry.split("/");
    const bare = address.replace(/^\[(.*)\]$/, "$1");
    const family = isIP(bare);
    const bits = family === 4 ? 32 : 128;
    const length = prefix === undefined ? bits : /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN;
    if (family === 0 || extra !== undefined || !(length >= 0 && length <= bits)) {
      throw new Error(
        `${JSON.stringify(entry)} is not an IP address or CIDR (e.g. 10.0.0.5, 10.0.0.0/8, fd00::/8)`,
      );
    }
    list.addSubnet(bare, length, family === 4 ? "ipv4" : "ipv6");
  }
  return list;
}

/** One client is one bucket whichever way its address is written: `::FFFF:10.0.0.1` is `10.0.0.1`. */
export function normaliseAddress(address: string): string {
  const lower = address.trim().toLowerCase();
  return lower.startsWith("::ffff:") && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

function isTrusted(trusted: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && trusted.check(address, family === 4 ? "ipv4" : "ipv6");
}

/**
 * The client of a request: the socket's peer, unless that peer is a trusted proxy. Then
 * X-Forwarded-For is read from the right (each proxy appends the address it received the request
 * from) and the first address that is not a trusted proxy is the client. Entries further left were
 * written by the client itself and prove nothing; an entry that is not an address stops the walk at
 * the nearest trusted proxy, so a garbled header can never mint a bucket of its own.
 */
export function clientAddress(
  peer: string,
  forwardedFor: (() => string | undefined) | undefined,
  trusted: TrustedProxies,
): string {
  const socketAddress = normaliseAddress(peer);
  if (!trusted || !forwardedFor || !isTrusted(trusted, socketAddress)) return socketAddress;
  const header = forwardedFor();
  if (!header) return socketAddress;
  const hops = header.split(",");
  let client = socketAddress;
  for (let index = hops.length - 1; index >= 0; index -= 1) {
    const hop = normaliseAddress(hops[index] ?? "");
    if (isIP(hop) === 0) break;
    client = hop;
    if (!isTrusted(trusted, hop)) break;
  }
  return client;
}
