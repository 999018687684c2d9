/**
 * Which address a request comes from, for the per-client failure limit.
 * By default the peer of the TCP connection. Behind a reverse proxy or an
 * ingress, every client would share the proxy's address, so one client's
 * failures could slow down the others of the same key id; with
 * --trusted-proxies, a request whose peer is a trusted proxy is counted under
 * the rightmost address of X-Forwarded-For that is not itself a trusted proxy
 * (the first hop a trusted proxy saw). Nothing else is ever trusted.
 *
 * Trust is narrow by construction: whoever may connect from a trusted address
 * can forge X-Forwarded-For, and so pin another client's address into the
 * failure limits, spread its own failures over forged addresses, and write
 * any address into the logs. A range wider than MAX_TRUSTED_ADDRESSES (a
 * pod network such as 10.0.0.0/8, where every Pod would be a "proxy") is
 * refused, unless the loudly named `allowBroad` (--insecure-broad-trusted-proxies)
 * says that something else (a NetworkPolicy) lets only the proxies reach the
 * token server.
 */
import { BlockList, isIP } from 'node:net';
import { unmapIPv4 } from './ratelimit.ts';

/** The most addresses one entry of --trusted-proxies may cover: an IPv4 /28, an IPv6 /124. */
export const MAX_TRUSTED_ADDRESSES = 16;
const MAX_HOST_BITS = Math.log2(MAX_TRUSTED_ADDRESSES);

export interface TrustedProxiesOptions {
  /** Accept ranges wider than MAX_TRUSTED_ADDRESSES: only when nothing but the proxies can reach the server. */
  allowBroad?: boolean;
}

export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;
  /** A range wider than MAX_TRUSTED_ADDRESSES is trusted (only with allowBroad): the startup log warns. */
  readonly broad: boolean = false;

  /** Throws a clear error for anything that is not an address or a CIDR, and for a range that is too broad. */
  constructor(cidrs: readonly string[], opts: TrustedProxiesOptions = {}) {
    for (const c of cidrs) {
      const [addr = '', bits] = c.split('/');
      const family = isIP(addr);
      const max = family === 4 ? 32 : 128;
      const prefix = bits === undefined ? max : Number(bits);
      if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) {
        throw new Error(`not an IP address or CIDR: ${JSON.stringify(c)}`);
      }
      if (max - prefix > MAX_HOST_BITS && !opts.allowBroad) {
        throw new Error(
          `${c} is too broad: it covers ${(2n ** BigInt(max - prefix)).toString()} addresses, and any client at one of them could forge ` +
          `X-Forwarded-For. Trust only the proxies' own addresses (at most ${MAX_TRUSTED_ADDRESSES} per entry: an IPv4 /${32 - MAX_HOST_BITS} ` +
          `or an IPv6 /${128 - MAX_HOST_BITS}), or, if a NetworkPolicy lets nothing but the proxies reach the token server, ` +
          'pass --insecure-broad-trusted-proxies');
      }
      this.list.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
      if (max - prefix > MAX_HOST_BITS) this.broad = true;
    }
    this.size = cidrs.length;
  }


  /** Whether `remote` (a TCP peer) is one of the trusted proxies, whose forwarded headers are believed. */
  trusts(remote: string): boolean {
    return this.size > 0 && this.trusted(remote);
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
