import { describe, expect, it } from 'vitest';
import { TrustedProxies } from './proxies.ts';

describe('the client address behind trusted proxies', () => {
  const proxies = new TrustedProxies(['10.0.0.0/8', 'fd00::/8', '192.168.1.1']);

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
