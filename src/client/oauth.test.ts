import { describe, expect, it } from 'vitest';
import { PluginUsageError } from './errors.ts';
import { isLoopbackUrl, requireSafeTransport } from './oauth.ts';

describe('where the plugin may send a Kubernetes credential', () => {
  it.each([
    ['http://localhost:8080/oauth/token', true],
    ['http://LOCALHOST.:8080/oauth/token', true],
    ['http://token.localhost:8080/oauth/token', true],
    ['http://127.0.0.1:8080/oauth/token', true],
    ['http://127.1.2.3/oauth/token', true],
    ['http://[::1]:8080/oauth/token', true],
    ['http://[::ffff:127.0.0.1]:8080/oauth/token', true],
    ['http://192.0.2.1:1/oauth/token', false],
    ['http://10.0.0.1/oauth/token', false],
    ['http://128.0.0.1/oauth/token', false],
    ['http://localhost.example.com/oauth/token', false],
    ['http://127.0.0.1.example.com/oauth/token', false],
    ['http://[::2]/oauth/token', false],
    ['http://apikey-operator-token.apikey-operator.svc:8080/oauth/token', false],
  ])('%s is on this machine: %s', (url, loopback) => {
    expect(isLoopbackUrl(url)).toBe(loopback);
  });

  it.each([
    'https://tokens.example.com/oauth/token',
    'https://192.0.2.1/oauth/token',
    'http://localhost:8080/oauth/token',
    'http://127.0.0.1:8080/oauth/token',
  ])('sends it to %s', (url) => {
    expect(() => requireSafeTransport(url, '--token-url')).not.toThrow();
  });

  it('refuses plain HTTP to another host, saying why and what to do instead', () => {
    let err: unknown;
    try { requireSafeTransport('http://192.0.2.1:1/oauth/token', '--token-url'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(PluginUsageError);
    const message = (err as Error).message;
    expect(message).toMatch(/plain HTTP to 192\.0\.2\.1:1 \(--token-url\)/);
    expect(message).toMatch(/act as you/);
    expect(message).toMatch(/https:\/\//);
    expect(message).toMatch(/port-forward svc\/apikey-operator-token 8080:8080/);
    expect(message).toMatch(/http:\/\/localhost:8080\/oauth\/token/);
  });
});
