/**
 * The allow-list matcher against a reference implementation: Node's own
 * BlockList (libuv's, in C++), which shares no code with networks.ts. For any
 * list of CIDRs and any address, the compiled list matches exactly when the
 * BlockList of the same subnets contains the address (IPv4-mapped IPv6
 * addresses compared as the IPv4 address they carry), and the rule it names
 * contains the address.
 */
import { BlockList } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalCidr, checkAllowedNetworks, checkNetworks, MAX_ALLOWED_NETWORKS, NetworkList, parseAddress, parseCidr } from './networks.ts';

const v4Text = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const v6Text = (v: bigint) => Array.from({ length: 8 }, (_, i) => ((v >> BigInt(16 * (7 - i))) & 0xffffn).toString(16)).join(':');

/** Addresses from a few small pools, so that lists and addresses meet often, and anywhere at all. */
const v4 = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.constantFrom(0x0a000000, 0x7f000001, 0xc0a80101, 0xffffffff, 0).chain((base) => fc.integer({ min: 0, max: 0xffff }).map((d) => (base ^ d) >>> 0)),
);
const v6 = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  fc.constantFrom(0x20010db8n << 96n, 1n, 0xfe80n << 112n).chain((base) => fc.bigInt({ min: 0n, max: 0xffffffffn }).map((d) => base ^ d)),
);
const cidr = fc.oneof(
  fc.tuple(v4, fc.integer({ min: 0, max: 32 })).map(([a, p]) => ({ text: `${v4Text(a)}/${p}`, family: 'ipv4' as const, addr: v4Text(a), p })),
  fc.tuple(v6, fc.integer({ min: 0, max: 128 })).map(([a, p]) => ({ text: `${v6Text(a)}/${p}`, family: 'ipv6' as const, addr: v6Text(a), p })),
);
const address = fc.oneof(
  v4.map((a) => ({ text: v4Text(a), ref: v4Text(a), family: 'ipv4' as const })),
  v4.map((a) => ({ text: `::ffff:${v4Text(a)}`, ref: v4Text(a), family: 'ipv4' as const })),
  v4.map((a) => ({ text: `::ffff:${(a >>> 16).toString(16)}:${(a & 0xffff).toString(16)}`, ref: v4Text(a), family: 'ipv4' as const })),
  // Not in ::ffff:0:0/96, which the client addresses above cover as IPv4.
  v6.filter((a) => a >> 32n !== 0xffffn).map((a) => ({ text: v6Text(a), ref: v6Text(a), family: 'ipv6' as const })),
);

/**
 * One BlockList per family: Node's BlockList matches an IPv4 address against IPv6 subnets too (as
 * ::ffff:a.b.c.d), where an allow-list matches IPv4 clients against IPv4 networks only.
 */
function reference(cidrs: { family: 'ipv4' | 'ipv6'; addr: string; p: number }[]) {
  const lists = { ipv4: new BlockList(), ipv6: new BlockList() };
  for (const c of cidrs) lists[c.family].addSubnet(c.addr, c.p, c.family);
  return { check: (addr: string, family: 'ipv4' | 'ipv6') => lists[family].check(addr, family) };
}

describe('the network allow-list matcher', () => {
  it('matches exactly what the reference BlockList contains, and names a rule that contains the address', () => {
    fc.assert(fc.property(fc.array(cidr, { minLength: 1, maxLength: MAX_ALLOWED_NETWORKS }), fc.array(address, { minLength: 1, maxLength: 20 }),
      (cidrs, addresses) => {
        const list = NetworkList.compile(cidrs.map((c) => c.text))!;
        const ref = reference(cidrs);
        for (const a of addresses) {
          // Node's BlockList does not unmap ::ffff:a.b.c.d for IPv4 subnets: the reference is asked with the IPv4 address.
          const expected = ref.check(a.ref, a.family);
          const rule = list.match(parseAddress(a.text));
          expect(rule !== undefined, `${a.text} in ${cidrs.map((c) => c.text).join(',')}`).toBe(expected);
          if (rule !== undefined) {
            const c = parseCidr(rule)!;
            expect(reference([{ family: c.family === 4 ? 'ipv4' : 'ipv6', addr: rule.split('/')[0]!, p: c.prefix }]).check(a.ref, a.family)).toBe(true);
          }
        }
      }), { numRuns: 1500 });
  });

  it('reports the longest matching prefix', () => {
    const list = NetworkList.compile(['10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '2001:db8::/32', '2001:db8:1::/48'])!;
    expect(list.match(parseAddress('10.1.2.3'))).toBe('10.1.2.0/24');
    expect(list.match(parseAddress('10.1.9.9'))).toBe('10.1.0.0/16');
    expect(list.match(parseAddress('10.200.0.1'))).toBe('10.0.0.0/8');
    expect(list.match(parseAddress('2001:db8:1::5'))).toBe('2001:db8:1::/48');
    expect(list.match(parseAddress('2001:db8:2::5'))).toBe('2001:db8::/32');
    expect(list.match(parseAddress('11.0.0.1'))).toBeUndefined();
  });

  it('matches IPv4-mapped IPv6 client addresses against IPv4 networks, and never IPv4 clients against ::ffff:0:0/96', () => {
    const list = NetworkList.compile(['127.0.0.0/8'])!;
    expect(list.match(parseAddress('::ffff:127.0.0.2'))).toBe('127.0.0.0/8');
    expect(list.match(parseAddress('::ffff:7f00:2'))).toBe('127.0.0.0/8');
    expect(list.match(parseAddress('::1'))).toBeUndefined();
    expect(NetworkList.compile(['::/0'])!.match(parseAddress('127.0.0.1'))).toBeUndefined();
    expect(NetworkList.compile(['0.0.0.0/0'])!.match(parseAddress('::1'))).toBeUndefined();
    expect(NetworkList.compile(['0.0.0.0/0'])!.match(parseAddress('::ffff:10.0.0.1'))).toBe('0.0.0.0/0');
  });

  it('fails closed: an entry or an address that does not parse matches nothing', () => {
    const list = NetworkList.compile(['bogus', '10.0.0.0/33', '1.2.3.4', 'fe80::/10%eth0', '10.0.0.0/08'])!;
    expect(list.invalid).toHaveLength(4);
    expect(list.match(parseAddress('1.2.3.4'))).toBeUndefined();
    expect(list.match(parseAddress('10.0.0.1'))).toBe('10.0.0.0/08');
    expect(NetworkList.compile(['10.0.0.0/8'])!.match(parseAddress('not an address'))).toBeUndefined();
    expect(parseAddress(undefined)).toBeUndefined();
    expect(parseAddress('fe80::1%eth0')).toEqual({ family: 6, v6: [0xfe800000, 0, 0, 1] });
  });

  it('allows what both the credential and its Deployment allow, and says which list refused', () => {
    const own = NetworkList.compile(['127.0.0.0/30']);
    const dep = NetworkList.compile(['127.0.0.2/31', '::1/128']);
    const at = (a: string) => checkNetworks(parseAddress(a), own, dep);
    expect(at('127.0.0.2')).toEqual({ allowed: true, credentialRule: '127.0.0.0/30', deploymentRule: '127.0.0.2/31' });
    expect(at('127.0.0.1')).toEqual({ allowed: false, refusedBy: 'deployment' });
    expect(at('::1')).toEqual({ allowed: false, refusedBy: 'credential' });
    expect(checkNetworks(parseAddress('192.0.2.1'), undefined, undefined)).toEqual({ allowed: true, credentialRule: undefined, deploymentRule: undefined });
    expect(NetworkList.compile([])).toBeUndefined();
    expect(checkNetworks(parseAddress('::1'), undefined, dep)).toEqual({ allowed: true, credentialRule: undefined, deploymentRule: '::1/128' });
  });
});

describe('the canonical form of a CIDR', () => {
  it.each([
    ['10.1.2.3/16', '10.1.0.0/16'],
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['2001:DB8:0:0::/64', '2001:db8::/64'],
    ['2001:db8:0:1:0:0:0:0/64', '2001:db8:0:1::/64'],
    ['2001:0:0:1:0:0:0:1/128', '2001:0:0:1::1/128'],
    ['2001:db8:1:2:3:4:5:6/128', '2001:db8:1:2:3:4:5:6/128'],
    ['::/0', '::/0'],
    ['fe80::1/10', 'fe80::/10'],
    ['2001:db8::1:0:0:1/127', '2001:db8:0:0:1::/127'],
    ['1:0:0:1:0:0:1:0/128', '1::1:0:0:1:0/128'],
  ])('of %s is %s', (cidr, canonical) => {
    expect(canonicalCidr(cidr)).toBe(canonical);
  });

  it('agrees with the parser for any CIDR: it is a fixed point, and the same network', () => {
    fc.assert(fc.property(cidr, (c) => {
      const canonical = canonicalCidr(c.text)!;
      expect(canonicalCidr(canonical)).toBe(canonical);
      const list = NetworkList.compile([canonical])!;
      expect(list.match(parseAddress(c.addr))).toBe(canonical);
    }), { numRuns: 2000 });
  });

  it('checks a typed list and says what to write instead', () => {
    expect(checkAllowedNetworks(['10.0.0.0/8', '2001:db8::/48'])).toEqual(['10.0.0.0/8', '2001:db8::/48']);
    expect(() => checkAllowedNetworks(['10.1.2.3/16'])).toThrow('10.1.2.3/16 is not in canonical form: write 10.1.0.0/16');
    expect(() => checkAllowedNetworks(['office'])).toThrow(/"office" is not a CIDR/);
    expect(() => checkAllowedNetworks(['10.0.0.0/8', '10.0.0.0/8'])).toThrow(/listed twice/);
    expect(() => checkAllowedNetworks(Array.from({ length: 65 }, (_, i) => `10.${i}.0.0/16`))).toThrow(/at most 64/);
  });
});
