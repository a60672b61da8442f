/**
 * Where the credential proxy may connect (THREATS.md K3, R8). The upstream's host is resolved
 * once; EVERY address in the answer must be a public unicast address (IPv4, or IPv6 inside
 * 2000::/3), unless the upstream's configuration allows private networks; then the proxy
 * connects to the checked address itself, so a DNS answer that changes between the check and
 * the connection (rebinding) changes nothing.
 *
 * Addresses are classified with ipaddr.js after IPv4-mapped IPv6 is unwrapped (::ffff:a.b.c.d
 * is a.b.c.d). Only canonical literals count as addresses (node's isIP); a URL's host has
 * already been canonicalised by the WHATWG parser (2130706433, 0x7f.1 and 0177.0.0.1 are all
 * 127.0.0.1 by then). Everything that is not plainly public is refused: loopback, private,
 * link-local (169.254.169.254 metadata), CGNAT, unique-local, multicast, broadcast, reserved,
 * unspecified, and the IPv6 transition ranges that embed IPv4 (6to4, Teredo, NAT64, the
 * deprecated IPv4-compatible ::a.b.c.d).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { CountersignError } from '@countersign/core';
import ipaddr from 'ipaddr.js';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Resolves a host name to every address it has. Tests pass a stub; production uses the system resolver. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

const GLOBAL_UNICAST_V6 = ipaddr.parse('2000::') as ipaddr.IPv6;
/** Ranges a test or an internal deployment may open with `allow_private_networks`. */
const PRIVATE_RANGES = new Set(['loopback', 'private', 'linkLocal', 'uniqueLocal', 'carrierGradeNat']);

/** Null when the proxy may connect to `address`; otherwise the range that forbids it. */
export function addressRefusal(address: string, allowPrivate: boolean): string | null {
  if (isIP(address) === 0) return 'not an IP address';
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.process(address);
  } catch {
    return 'not an IP address';
  }
  const range = ip.range();
  if (range === 'unicast') {
    if (ip.kind() === 'ipv4') return null;
    if ((ip as ipaddr.IPv6).match(GLOBAL_UNICAST_V6, 3)) return null;
    return 'IPv6 outside 2000::/3';
  }
  if (allowPrivate && PRIVATE_RANGES.has(range)) return null;
  return range;
}

/**
 * Resolves `url`'s host and checks every address; returns the one to connect to. Throws
 * CS_PROXY_DESTINATION_REFUSED (no connection is made) when any address is refused.
 */
export async function checkDestination(
  url: URL,
  options: { allowPrivate: boolean; resolve: Resolver },
): Promise<ResolvedAddress> {
  const refuse = (why: string): never => {
    throw new CountersignError('CS_PROXY_DESTINATION_REFUSED', `the upstream's address is refused: ${why}`);
  };
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && options.allowPrivate)) {
    refuse('only https upstreams (plain http only where private networks are allowed)');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: ResolvedAddress[];
  if (isIP(host) !== 0) {
    addresses = [{ address: host, family: isIP(host) === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await options.resolve(host);
    } catch {
      refuse(`${host} does not resolve`);
    }
  }
  if (addresses!.length === 0) refuse(`${host} has no address`);
  for (const a of addresses!) {
    const why = addressRefusal(a.address, options.allowPrivate);
    if (why) refuse(`${host} resolves to a ${why} address`);
  }
  return addresses![0]!;
}
