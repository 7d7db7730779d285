import { describe, expect, it } from "vitest";
import {
  clientAddress,
  normaliseAddress,
  parseTrustedProxies,
} from "../../../app/services/rate-limit/client-address.ts";

const trusted = parseTrustedProxies("10.0.0.0/8, 192.168.1.5, fd00::/8, [::1]");
const xff = (value: string | undefined) => () => value;

describe("--trusted-proxies", () => {
  it("accepts IPv4 and IPv6 addresses and CIDRs, and nothing as none", () => {
    expect(parseTrustedProxies("")).toBeNull();
    expect(parseTrustedProxies(" , ")).toBeNull();
    const list = parseTrustedProxies("10.1.0.0/16,2001:db8::/32,127.0.0.1");
    expect(list?.check("10.1.200.3", "ipv4")).toBe(true);
    expect(list?.check("10.2.0.1", "ipv4")).toBe(false);
    expect(list?.check("2001:db8:ffff::1", "ipv6")).toBe(true);
    expect(list?.check("2001:db9::1", "ipv6")).toBe(false);
    expect(list?.check("127.0.0.1", "ipv4")).toBe(true);
  });

  it.each([
    "10.0.0.0/33",
    "fd00::/129",
    "10.0.0.0/",
    "10.0.0.0/8/8",
    "10.0.0.0/x",
    "proxy.example",
    "10.0.0",
    "10.0.0.1,nonsense",
  ])("refuses %s, naming the entry", (raw) => {
    expect(() => parseTrustedProxies(raw)).toThrow(/is not an IP address or CIDR/);
  });
});

describe("client address", () => {
  it("is the socket's peer when no proxy is trusted, whatever X-Forwarded-For says", () => {
    expect(clientAddress("203.0.113.9", xff("198.51.100.1"), null)).toBe("203.0.113.9");
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", () => {
    expect(clientAddress("203.0.113.9", xff("198.51.100.1"), trusted)).toBe("203.0.113.9");
  });

  it("takes the right-most untrusted address of X-Forwarded-For from a trusted proxy", () => {
    // The client wrote the first two entries itself; 10.0.0.7 is a proxy of ours.
    expect(clientAddress("10.0.0.1", xff("1.1.1.1, 6.6.6.6, 198.51.100.1, 10.0.0.7"), trusted)).toBe(
      "198.51.100.1",
    );
    expect(clientAddress("192.168.1.5", xff("198.51.100.2"), trusted)).toBe("198.51.100.2");
    expect(clientAddress("fd00::5", xff("2001:db8::77"), trusted)).toBe("2001:db8::77");
  });

  it("falls back to the left-most entry when every hop is trusted, and to the peer without a header", () => {
    expect(clientAddress("10.0.0.1", xff("10.9.9.9, 10.0.0.2"), trusted)).toBe("10.9.9.9");
    expect(clientAddress("10.0.0.1", xff(undefined), trusted)).toBe("10.0.0.1");
    expect(clientAddress("10.0.0.1", xff(""), trusted)).toBe("10.0.0.1");
  });

  it("stops at the nearest trusted proxy when an entry is not an address", () => {
    expect(clientAddress("10.0.0.1", xff("198.51.100.1, unknown, 10.0.0.2"), trusted)).toBe("10.0.0.2");
    expect(clientAddress("10.0.0.1", xff("garbage"), trusted)).toBe("10.0.0.1");
  });

  it("reads IPv4-mapped IPv6 peers (dual-stack sockets) as IPv4", () => {
    expect(normaliseAddress("::FFFF:10.0.0.1")).toBe("10.0.0.1");
    expect(clientAddress("::ffff:10.0.0.1", xff("198.51.100.3"), trusted)).toBe("198.51.100.3");
    expect(clientAddress("::ffff:203.0.113.9", xff("198.51.100.3"), trusted)).toBe("203.0.113.9");
    expect(clientAddress("::1", xff("198.51.100.4"), trusted)).toBe("198.51.100.4");
    expect(normaliseAddress("2001:DB8::1")).toBe("2001:db8::1");
  });

  it("reads the header only when the peer is trusted", () => {
    let read = 0;
    const header = () => {
      read += 1;
      return "198.51.100.1";
    };
    clientAddress("203.0.113.9", header, trusted);
    expect(read).toBe(0);
    clientAddress("10.0.0.1", header, trusted);
    expect(read).toBe(1);
  });
});
