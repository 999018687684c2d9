import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONSOLE_FLAGS, IN_CLUSTER_CONSOLE_FLAGS, parseFlags, UsageError } from '../client/options.ts';
import { apiserverOf, bearerKubeConfig, CLIENT_SECRET_ENV, IN_CLUSTER_CA_FILE, inClusterSettings, isInClusterMode } from './in-cluster-options.ts';

const dir = mkdtempSync(join(tmpdir(), 'console-options-'));
const secretFile = join(dir, 'client-secret');
writeFileSync(secretFile, 'secret-from-file\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = ['--oidc-issuer-url', 'https://idp.example.test/realms/k8s/', '--oidc-client-id', 'console', '--public-url', 'https://console.example.test/'];
const pod = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
const settings = (args: string[], env: NodeJS.ProcessEnv = {}) => inClusterSettings(parseFlags(args, IN_CLUSTER_CONSOLE_FLAGS), { ...pod, ...env });

describe('the in-cluster console settings', () => {
  it('are selected by --oidc-issuer-url, and take the client secret from a file and the API server from the pod', () => {
    const args = [...base, '--oidc-client-secret-file', secretFile];
    expect(isInClusterMode(parseFlags(args, IN_CLUSTER_CONSOLE_FLAGS))).toBe(true);
    expect(isInClusterMode(parseFlags([], IN_CLUSTER_CONSOLE_FLAGS))).toBe(false);
    expect(settings(args)).toEqual({
      oidc: {
        issuerUrl: 'https://idp.example.test/realms/k8s', clientId: 'console', clientSecret: 'secret-from-file',
        redirectUri: 'https://console.example.test/auth/callback', scopes: ['openid', 'email', 'profile'],
      },
      publicUrl: 'https://console.example.test',
      apiserver: { server: 'https://10.96.0.1:443', caFile: IN_CLUSTER_CA_FILE },
      secureCookies: true,
    });
  });

  it('take the client secret from the environment when no file is named, and always ask for openid', () => {
    const s = settings([...base, '--oidc-scopes', 'groups,email', '--oidc-ca-file', '/ca.pem'], { [CLIENT_SECRET_ENV]: 'secret-from-env' });
    expect(s.oidc).toMatchObject({ clientSecret: 'secret-from-env', scopes: ['openid', 'groups', 'email'], caFile: '/ca.pem' });
  });

  it.each([
    [['--oidc-issuer-url', 'https://idp.example.test', '--public-url', 'https://c.example.test'], /--oidc-client-id is required/],
    [['--oidc-issuer-url', 'https://idp.example.test', '--oidc-client-id', 'c'], /--public-url is required/],
    [['--oidc-issuer-url', 'http://idp.example.test', '--oidc-client-id', 'c', '--public-url', 'https://c.example.test'], /must be an https URL/],
    [['--oidc-issuer-url', 'idp', '--oidc-client-id', 'c', '--public-url', 'https://c.example.test'], /must be a URL/],
    [[...base], /needs the client secret/],
    [[...base, '--oidc-client-secret-file', '/nonexistent/secret'], /cannot be read: ENOENT/],
  ])('refuse %j with a message saying what to set', (args, message) => {
    expect(() => settings(args)).toThrow(UsageError);
    expect(() => settings(args)).toThrow(message);
  });

  it('never accept the client secret as a flag, where ps would show it', () => {
    expect(() => parseFlags([...base, '--oidc-client-secret', 'x'], CONSOLE_FLAGS)).toThrow(UsageError);
  });

  it('are flags of apikey-operator console', () => {
    expect(IN_CLUSTER_CONSOLE_FLAGS.every((f) => CONSOLE_FLAGS.includes(f))).toBe(true);
  });

  it('serve plain-HTTP cookies only when people reach the console over plain HTTP', () => {
    const s = settings(['--oidc-issuer-url', 'https://idp.example.test', '--oidc-client-id', 'c', '--public-url', 'http://127.0.0.1:8080'],
      { [CLIENT_SECRET_ENV]: 's' });
    expect(s.secureCookies).toBe(false);
    expect(s.oidc.redirectUri).toBe('http://127.0.0.1:8080/auth/callback');
  });
});

describe('the API server the console calls as the person', () => {
  it.each([
    [{}, pod, { server: 'https://10.96.0.1:443', caFile: IN_CLUSTER_CA_FILE }],
    [{}, { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, { server: 'https://[fd00::1]:6443', caFile: IN_CLUSTER_CA_FILE }],
    [{ 'apiserver-url': 'https://127.0.0.1:6443/', 'apiserver-ca-file': '/ca.crt' }, {}, { server: 'https://127.0.0.1:6443', caFile: '/ca.crt' }],
  ])('with flags %j and environment %j is %j', (flags, env, expected) => {
    expect(apiserverOf(flags, env)).toEqual(expected);
  });

  it('must be named outside a pod', () => {
    expect(() => apiserverOf({}, {})).toThrow(/--apiserver-url is required outside a pod/);
  });

  it('is called with the person\'s token only: no client certificate, no other credential', () => {
    const kc = bearerKubeConfig({ server: 'https://10.96.0.1:443', caFile: '/ca.crt' }, 'the-id-token');
    expect(kc.getCurrentCluster()).toMatchObject({ server: 'https://10.96.0.1:443', caFile: '/ca.crt', skipTLSVerify: false });
    const user = kc.getCurrentUser();
    expect(user).toMatchObject({ token: 'the-id-token' });
    expect(user?.certData ?? user?.certFile ?? user?.exec ?? user?.authProvider).toBeUndefined();
  });
});
