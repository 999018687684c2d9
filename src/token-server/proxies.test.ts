import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TrustedProxies } from './proxies.ts';

describe('the client address behind trusted proxies', () => {
  const proxies = new TrustedProxies(['10.0.0.0/8', 'fd00::/8', '192.168.1.1'], { allowBroad: true });

  it.each([
    ['a peer that is not a trusted proxy, whatever it forwards', '203.0.113.9', '198.51.100.1', '203.0.113.9'],
    ['a trusted proxy with no header', '10.1.2.3', undefined, '10.1.2.3'],
    ['a trusted proxy: the forwarded client', '10.1.2.3', '198.51.100.7', '198.51.100.7'],
    ['two trusted hops: the rightmost untrusted address', '10.1.2.3', '198.51.100.7, 203.0.113.1, 10.9.9.9', '203.0.113.1'],
    ['a spoofed leftmost entry is ignored', '10.1.2.3', '1.2.3.4, 198.51.100.7', '198.51.100.7'],
    ['garbage in the header: the proxy itself', '10.1.2.3', 'not-an-ip', '10.1.2.3'],
    ['an IPv4-mapped IPv6 peer', '::ffff:10.1.2.3', '198.51.100.8', '198.51.100.8'],
    ['an IPv6 proxy', 'fd00::1', '2001:db8::5', '2001:db8::5'],
    ['a single trusted address', '192.168.1.1', '198.51.100.9', '198.51.100.9'],
  ])('%s', (_name, remote, xff, want) => {
    expect(proxies.clientOf(remote, xff)).toBe(want);
  });

  it('trusts nothing when no proxy is configured', () => {
    expect(new TrustedProxies([]).clientOf('10.1.2.3', '198.51.100.7')).toBe('10.1.2.3');
  });

  it.each(['10.0.0.0/33', 'banana', '10.0.0.0/x', 'fd00::/129', ''])('refuses %j', (cidr) => {
    expect(() => new TrustedProxies([cidr])).toThrow(/not an IP address or CIDR/);
  });
});

describe('narrow trust by construction', () => {
  it.each(['10.0.0.0/8', '10.244.0.0/16', '10.244.1.0/24', '10.244.1.0/27', 'fd00::/8', '2001:db8::/64', '2001:db8::/123', '0.0.0.0/0'])(
    'refuses %s, too broad, with what to do instead', (cidr) => {
      expect(() => new TrustedProxies(['192.0.2.1', cidr])).toThrow(new RegExp(
        `^${cidr.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is too broad: it covers \\d+ addresses, and any client at one of them could forge X-Forwarded-For\\. ` +
        'Trust only the proxies\' own addresses \\(at most 16 per entry: an IPv4 /28 or an IPv6 /124\\).*--insecure-broad-trusted-proxies$'));
    });

  it.each(['10.244.1.7', '10.244.1.16/28', '10.244.1.20/30', '2001:db8::1', '2001:db8::10/124'])('accepts %s', (cidr) => {
    const p = new TrustedProxies([cidr]);
    expect(p.broad).toBe(false);
  });

  it('accepts a broad range only with the loudly named override, and says so', () => {
    const p = new TrustedProxies(['10.0.0.0/8', '192.0.2.1'], { allowBroad: true });
    expect(p.broad).toBe(true);
    expect(p.clientOf('10.9.9.9', '198.51.100.7')).toBe('198.51.100.7');
  });

  it('keeps the forwarded address of a trusted peer only, for any peer and header (property)', () => {
    const p = new TrustedProxies(['192.0.2.16/28']);
    const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
    fc.assert(fc.property(v4, fc.array(fc.oneof(v4, fc.string({ maxLength: 20 })), { maxLength: 5 }), (peer, hops) => {
      const client = p.clientOf(peer, hops.join(','));
      const [a, b, c, d] = peer.split('.').map(Number) as [number, number, number, number];
      const trusted = a === 192 && b === 0 && c === 2 && d >= 16 && d < 32;
      if (!trusted) expect(client).toBe(peer);
      else expect(client === peer || hops.join(',').split(',').map((h) => h.trim()).includes(client!)).toBe(true);
    }), { numRuns: 2000 });
  });
});
