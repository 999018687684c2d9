/**
 * Which address a request comes from, for the per-client failure limit.
 * By default the peer of the TCP connection. Behind a reverse proxy or an
 * ingress, every client would share the proxy's address, so one client's
 * failures could slow down the others of the same key id; with
 * --trusted-proxies, a request whose peer is a trusted proxy is counted under
 * the rightmost address of X-Forwarded-For that is not itself a trusted proxy
 * (the first hop a trusted proxy saw). Nothing else is ever trusted.
 */
import { BlockList, isIP } from 'node:net';
import { unmapIPv4 } from './ratelimit.ts';

export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;

  /** Throws a clear error for anything that is not an address or a CIDR. */
  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const [addr = '', bits] = c.split('/');
      const family = isIP(addr);
      const max = family === 4 ? 32 : 128;
      const prefix = bits === undefined ? max : Number(bits);
      if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) {
        throw new Error(`not an IP address or CIDR: ${JSON.stringify(c)}`);
      }
      this.list.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
    this.size = cidrs.length;
  }

  private trusted(addr: string): boolean {
    const bare = unmapIPv4(addr);
    const family = isIP(bare);
    return family !== 0 && this.list.check(bare, family === 4 ? 'ipv4' : 'ipv6');
  }

  /** The client address of a request whose TCP peer is `remote`. */
  clientOf(remote: string | undefined, forwardedFor: string | string[] | undefined): string | undefined {
    if (this.size === 0 || !remote || !this.trusted(remote) || forwardedFor === undefined) return remote;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',').map((h) => h.trim());
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (isIP(hop) === 0) return remote; // garbage in a trusted header: count the proxy, trust nothing
      if (!this.trusted(hop)) return hop;
    }
    return hops[0] ?? remote;
  }
}
