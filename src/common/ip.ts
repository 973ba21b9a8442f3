import net from 'node:net';
import { parseCidr } from './validation';

const normalise = (address: string): string =>
  address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;

/** True when the address falls in one of the CIDRs (IPv4-mapped IPv6 addresses count as IPv4). */
export function ipAllowed(address: string, cidrs: string[]): boolean {
  const ip = normalise(address);
  const family = net.isIPv4(ip) ? 'ipv4' : net.isIPv6(ip) ? 'ipv6' : null;
  if (!family) return false;
  const list = new net.BlockList();
  for (const cidr of cidrs) {
    const parsed = parseCidr(cidr);
    if (parsed) list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  return list.check(ip, family);
}

/**
 * The client's address: the socket peer, or — only when that peer is a trusted proxy — the
 * right-most X-Forwarded-For entry that is not itself a trusted proxy.
 */
export function clientIp(remoteAddress: string | undefined, forwardedFor: string | string[] | undefined, trustedProxies: string[]): string | null {
  if (!remoteAddress) return null;
  let current = normalise(remoteAddress);
  if (trustedProxies.length === 0 || !forwardedFor) return current;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  while (ipAllowed(current, trustedProxies) && hops.length > 0) {
    const next = normalise(hops.pop()!);
    if (net.isIP(next) === 0) break;
    current = next;
  }
  return current;
}
