import type { IncomingMessage } from 'node:http';
import { KubeConfig } from '../kube/kubeconfig.ts';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../client/options.ts';
import { consoleTokenUrl, isLoopbackHost, kubeconfigBearerToken, LocalSignIn } from './local.ts';

function kubeconfig(user: Record<string, unknown>): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: false }],
    users: [{ name: 'u', ...user }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

const request = (host: string | undefined) => ({ headers: host === undefined ? {} : { host } }) as IncomingMessage;

describe('local mode', () => {
  it.each([
    ['127.0.0.1:8000', true],
    ['localhost:8000', false],
    ['127.0.0.1:8001', false],
    ['127.0.0.1', false],
    ['attacker.example', false],
    [undefined, false],
  ])('accepts a request with Host %s: %s', (host, accepted) => {
    const s = new LocalSignIn({ kc: kubeconfig({ token: 't' }), defaultNamespace: 'default' });
    s.listening('127.0.0.1', 8000);
    const refusal = s.admit(request(host));
    expect(refusal === undefined).toBe(accepted);
    if (refusal) expect(refusal.status).toBe(421);
  });

  it('prints a sign-in URL on the loopback address it serves, with a one-time code', () => {
    const s = new LocalSignIn({ kc: kubeconfig({ token: 't' }), defaultNamespace: 'default' });
    s.listening('127.0.0.1', 8000);
    expect(s.signInUrl()).toMatch(/^http:\/\/127\.0\.0\.1:8000\/sign-in\?code=[\w-]{40,}$/);
  });

  it.each([['127.0.0.1', true], ['127.1.2.3', true], ['::1', true], ['0.0.0.0', false], ['localhost', false], ['10.0.0.1', false]])(
    'listens on %s: %s', (host, ok) => expect(isLoopbackHost(host)).toBe(ok));

  it('exchanges a bearer token from the kubeconfig', async () => {
    expect(await kubeconfigBearerToken(kubeconfig({ token: 'abc.def' }))).toEqual({ token: 'abc.def' });
  });

  it('explains that a client certificate has no token to exchange', async () => {
    const r = await kubeconfigBearerToken(kubeconfig({ certData: Buffer.from('cert').toString('base64'), keyData: Buffer.from('key').toString('base64') }));
    expect(r).toHaveProperty('unavailable');
    expect((r as { unavailable: string }).unavailable).toMatch(/signs in with a client certificate, not a bearer token.*needs token-based credentials/);
  });

  it.each([
    ['http://localhost:8080', 'http://localhost:8080/oauth/token'],
    ['https://tokens.example.com/oauth/token', 'https://tokens.example.com/oauth/token'],
  ])('reads --token-url %s as the token endpoint %s', (value, endpoint) => expect(consoleTokenUrl(value)).toBe(endpoint));

  it.each(['not a url', 'ftp://tokens.example.com'])('refuses --token-url %s as a usage error', (value) => {
    expect(() => consoleTokenUrl(value)).toThrow(UsageError);
  });
});
