/**
 * Network allow-lists (spec.allowedNetworks of ApiKeys, FederatedCredentials
 * and Deployments): CIDRs compiled once, when a watch event changes the
 * object, into a structure a request checks with no parsing of the list and
 * no allocation beyond the client address itself.
 *
 * The compiled form: per address family, the entries as (network, mask)
 * pairs, longest prefix first, so a check is one AND and one compare per
 * entry (four of each for IPv6, on 32-bit words: no BigInt), at most
 * MAX_ALLOWED_NETWORKS entries, and the first hit is the most specific rule.
 *
 * Invariants the token server relies on:
 * - undefined or an empty list allows every address (the field is optional);
 * - an IPv4-mapped IPv6 client address (::ffff:a.b.c.d, in either notation)
 *   is matched as the IPv4 address it carries, against IPv4 networks only;
 * - a list entry that does not parse (the CRD validates each entry, so only
 *   an object written around the apiserver's validation could hold one)
 *   matches nothing: a malformed allow-list fails closed, it never opens up;
 * - a client address that does not parse matches nothing.
 */
import { isIP } from 'node:net';

/** The most entries one allowedNetworks list may hold (the CRD's maxItems). */
export const MAX_ALLOWED_NETWORKS = 64;

/** A parsed client address: IPv4 as a 32-bit number, IPv6 as four 32-bit words, most significant first. */
export type ParsedAddress = { family: 4; v4: number } | { family: 6; v6: readonly number[] };

interface Rule<N> { net: N; mask: N; prefix: number; text: string }

export class NetworkList {
  /** The entries as written, in order. */
  readonly cidrs: readonly string[];
  /** Entries that are not CIDRs (they match nothing). */
  readonly invalid: readonly string[];
  private readonly v4: Rule<number>[] = [];
  private readonly v6: Rule<number[]>[] = [];

  private constructor(cidrs: readonly string[]) {
    this.cidrs = cidrs;
    const invalid: string[] = [];
    for (const c of cidrs) {
      const parsed = parseCidr(c);
      if (!parsed) {
        invalid.push(c);
      } else if (parsed.family === 4) {
        const mask = maskV4(parsed.prefix);
        this.v4.push({ net: (parsed.v4 & mask) >>> 0, mask, prefix: parsed.prefix, text: c });
      } else {
        const mask = maskV6(parsed.prefix);
        this.v6.push({ net: parsed.v6.map((w, i) => (w & mask[i]!) >>> 0), mask, prefix: parsed.prefix, text: c });
      }
    }
    this.invalid = invalid;
    this.v4.sort((a, b) => b.prefix - a.prefix);
    this.v6.sort((a, b) => b.prefix - a.prefix);
  }

  /** The compiled list, or undefined for an absent or empty one (anywhere). */
  static compile(cidrs: readonly string[] | undefined): NetworkList | undefined {
    return cidrs && cidrs.length > 0 ? new NetworkList([...cidrs]) : undefined;
  }

  /** The entry that contains `addr` (the longest prefix), or undefined when none does. */
  match(addr: ParsedAddress | undefined): string | undefined {
    if (!addr) return undefined;
    if (addr.family === 4) {
      const a = addr.v4;
      for (const r of this.v4) if (((a & r.mask) >>> 0) === r.net) return r.text;
      return undefined;
    }
    const [a0, a1, a2, a3] = addr.v6 as [number, number, number, number];
    for (const { net, mask, text } of this.v6) {
      if (((a0 & mask[0]!) >>> 0) === net[0] && ((a1 & mask[1]!) >>> 0) === net[1]
        && ((a2 & mask[2]!) >>> 0) === net[2] && ((a3 & mask[3]!) >>> 0) === net[3]) return text;
    }
    return undefined;
  }
}

function maskV4(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The four 32-bit words of an IPv6 mask of `prefix` bits. */
function maskV6(prefix: number): number[] {
  return [0, 1, 2, 3].map((i) => maskV4(Math.max(0, Math.min(32, prefix - 32 * i))));
}

function parseV4(s: string): number | undefined {
  if (isIP(s) !== 4) return undefined;
  const p = s.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/** The four 32-bit words of an IPv6 address (zone id dropped), or undefined. */
function parseV6(s: string): number[] | undefined {
  const bare = s.includes('%') ? s.slice(0, s.indexOf('%')) : s;
  if (isIP(bare) !== 6) return undefined;
  let text = bare;
  // A dotted IPv4 tail (::ffff:1.2.3.4, ::1.2.3.4) is two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseV4(tail);
    if (v4 === undefined) return undefined;
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) return undefined;
  const g = groups.map((x) => Number.parseInt(x, 16));
  return [0, 1, 2, 3].map((i) => ((g[2 * i]! << 16) | g[2 * i + 1]!) >>> 0);
}


/**
 * A client address (the TCP peer, or the hop --trusted-proxies picked from
 * X-Forwarded-For), parsed once per request; an IPv4-mapped IPv6 address
 * becomes the IPv4 address it carries. Undefined for anything else.
 */
export function parseAddress(s: string | undefined): ParsedAddress | undefined {
  if (!s) return undefined;
  const v4 = parseV4(s);
  if (v4 !== undefined) return { family: 4, v4 };
  const v6 = parseV6(s);
  if (v6 === undefined) return undefined;
  // ::ffff:0:0/96, IPv4-mapped: the IPv4 address it carries.
  if (v6[0] === 0 && v6[1] === 0 && v6[2] === 0xffff) return { family: 4, v4: v6[3]! };
  return { family: 6, v6 };
}

/** A CIDR `address/prefix` with a decimal prefix length in range, or undefined. */
export function parseCidr(c: string): { family: 4; v4: number; prefix: number } | { family: 6; v6: number[]; prefix: number } | undefined {
  const slash = c.indexOf('/');
  if (slash === -1) return undefined;
  const bits = c.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits)) return undefined;
  const prefix = Number(bits);
  const addr = c.slice(0, slash);
  if (addr.includes('%')) return undefined;
  const v4 = parseV4(addr);
  if (v4 !== undefined) return prefix <= 32 ? { family: 4, v4, prefix } : undefined;
  const v6 = parseV6(addr);
  return v6 !== undefined && prefix <= 128 ? { family: 6, v6, prefix } : undefined;
}

/** Which list refused a client: the key's or credential's own, or its Deployment's. */
export type NetworkRefusal = 'credential' | 'deployment';

/** What the two lists of a request said: the rules that let it in, or which list refused it. */
export type NetworkVerdict =
  | { allowed: true; credentialRule: string | undefined; deploymentRule: string | undefined }
  | { allowed: false; refusedBy: NetworkRefusal };

/**
 * A key or credential may be used from what both it and its Deployment
 * allow: the intersection of the two lists, each absent one being anywhere.
 */
export function checkNetworks(addr: ParsedAddress | undefined, own: NetworkList | undefined,
  deployment: NetworkList | undefined): NetworkVerdict {
  const credentialRule = own ? own.match(addr) : undefined;
  if (own && credentialRule === undefined) return { allowed: false, refusedBy: 'credential' };
  const deploymentRule = deployment ? deployment.match(addr) : undefined;
  if (deployment && deploymentRule === undefined) return { allowed: false, refusedBy: 'deployment' };
  return { allowed: true, credentialRule, deploymentRule };
}

function formatV6(words: readonly number[]): string {
  const groups = words.flatMap((w) => [w >>> 16, w & 0xffff]);
  // RFC 5952: the longest run of two or more zero groups (the first of equals) becomes ::.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/**
 * The canonical text of a CIDR, as the CRD's rule computes it (the apiserver's
 * `string(cidr(self).masked())`): host bits zero, IPv6 in lower case and
 * shortest form. Undefined when `c` is no CIDR. The console and the plugin use
 * it to say what to write instead, before the apiserver refuses the object.
 */
export function canonicalCidr(c: string): string | undefined {
  const p = parseCidr(c);
  if (!p) return undefined;
  if (p.family === 4) {
    const v = (p.v4 & maskV4(p.prefix)) >>> 0;
    return `${[v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.')}/${p.prefix}`;
  }
  const mask = maskV6(p.prefix);
  return `${formatV6(p.v6.map((w, i) => (w & mask[i]!) >>> 0))}/${p.prefix}`;
}

/**
 * Checks a list typed by a person (the console's form, the plugin's flags):
 * each entry a CIDR in canonical form, at most MAX_ALLOWED_NETWORKS, no
 * repeats. Returns the list, or throws an Error whose message says what to
 * write instead.
 */
export function checkAllowedNetworks(entries: readonly string[]): string[] {
  if (entries.length > MAX_ALLOWED_NETWORKS) throw new Error(`at most ${MAX_ALLOWED_NETWORKS} networks (got ${entries.length})`);
  const seen = new Set<string>();
  for (const e of entries) {
    const canonical = canonicalCidr(e);
    if (canonical === undefined) {
      throw new Error(`${JSON.stringify(e.slice(0, 64))} is not a CIDR: write an address, a slash and a prefix length, such as 10.20.0.0/16, 192.0.2.7/32 or 2001:db8::/48`);
    }
    if (canonical !== e) throw new Error(`${e} is not in canonical form: write ${canonical}`);
    if (seen.has(e)) throw new Error(`${e} is listed twice`);
    seen.add(e);
  }
  return [...entries];
}
