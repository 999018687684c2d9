import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpMethod, KubeConfig as ClientNodeKubeConfig, RequestContext } from '@kubernetes/client-node';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { credentialsOf, needsClientNode, TOKEN_FILE_REREAD_MS } from './credentials.ts';
import { KubeConfig, TOKEN_FILE_PROVIDER, type Cluster, type User } from './kubeconfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'credentials-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.useRealTimers());

const tokenFile = join(dir, 'token');
const CLUSTER: Cluster = { name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: true };

function config(user: User, cluster: Cluster = CLUSTER): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [cluster], users: [user], contexts: [{ name: 'x', cluster: cluster.name, user: user.name }], currentContext: 'x' });
  return kc;
}

/** The headers client-node's applySecurityAuthentication sets for the same user. */
async function clientNodeHeaders(user: User): Promise<Record<string, string>> {
  const kc = new ClientNodeKubeConfig();
  kc.loadFromOptions({ clusters: [{ ...CLUSTER, skipTLSVerify: true }], users: [user as never], contexts: [{ name: 'x', cluster: 'c', user: user.name }], currentContext: 'x' });
  const ctx = new RequestContext(CLUSTER.server, HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return ctx.getHeaders();
}

describe('the headers of a request', () => {
  writeFileSync(tokenFile, 'file-token');

  it.each<[string, User, Record<string, string>]>([
    ['a token', { name: 'u', token: 't1' }, { Authorization: 'Bearer t1' }],
    ['a user name and password', { name: 'u', username: 'me', password: 'pw' }, { Authorization: `Basic ${Buffer.from('me:pw').toString('base64')}` }],
    ['a token and a user name (the token wins)', { name: 'u', token: 't1', username: 'me', password: 'pw' }, { Authorization: 'Bearer t1' }],
    ['impersonation', { name: 'u', token: 't1', impersonateUser: 'alice' }, { Authorization: 'Bearer t1', 'Impersonate-User': 'alice' }],
    ['the in-cluster token file', { name: 'u', authProvider: { name: TOKEN_FILE_PROVIDER, config: { tokenFile } } }, { Authorization: 'Bearer file-token' }],
    ['a client certificate only', { name: 'u', certData: 'Y2VydA==', keyData: 'a2V5' }, {}],
    ['nothing', { name: 'u' }, {}],
  ])('with %s are what client-node sends', async (_, user, expected) => {
    const { headers } = await credentialsOf(config(user)).authenticate(CLUSTER.server);
    expect(headers).toEqual(expected);
    const theirs = Object.fromEntries(Object.entries(await clientNodeHeaders(user)).filter(([k]) => k !== 'User-Agent'));
    expect(headers).toEqual(theirs);
  });
});

describe('a token file', () => {
  it('is read again once a minute, as the kubelet rotates it, and without its line end', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const file = join(dir, 'rotated');
    writeFileSync(file, 'first\n');
    const creds = credentialsOf(config({ name: 'u', authProvider: { name: TOKEN_FILE_PROVIDER, config: { tokenFile: file } } }));
    const auth = async () => (await creds.authenticate(CLUSTER.server)).headers.Authorization;
    expect(await auth()).toBe('Bearer first');
    writeFileSync(file, 'second\n');
    vi.advanceTimersByTime(TOKEN_FILE_REREAD_MS - 1000);
    expect(await auth()).toBe('Bearer first');
    vi.advanceTimersByTime(2000);
    expect(await auth()).toBe('Bearer second');
  });

  it('that cannot be read fails the request, not the client\'s creation', async () => {
    const creds = credentialsOf(config({ name: 'u', authProvider: { name: TOKEN_FILE_PROVIDER, config: { tokenFile: join(dir, 'missing') } } }));
    await expect(creds.authenticate(CLUSTER.server)).rejects.toThrow(/ENOENT/);
  });
});

describe('the connection pool', () => {
  it('is one for every request', async () => {
    const creds = credentialsOf(config({ name: 'u', token: 't' }));
    expect((await creds.authenticate('a')).dispatcher).toBe((await creds.authenticate('b')).dispatcher);
  });

  it('refuses plain http unless the kubeconfig skips TLS verification, as client-node does', async () => {
    const creds = credentialsOf(config({ name: 'u', token: 't' }, { name: 'c', server: 'http://127.0.0.1:8080' }));
    await expect(creds.authenticate('x')).rejects.toThrow('HTTP protocol is not allowed when skipTLSVerify is not set or false');
  });
});

describe('client-node', () => {
  it.each<[string, Partial<Cluster>, Omit<User, 'name'>, boolean]>([
    ['a token', {}, { token: 't' }, false],
    ['client certificates', {}, { certFile: '/c', keyFile: '/k' }, false],
    ['the in-cluster token file', {}, { authProvider: { name: TOKEN_FILE_PROVIDER, config: { tokenFile: '/t' } } }, false],
    ['an exec plugin', {}, { exec: { command: 'x' } }, true],
    ['an OIDC auth provider', {}, { authProvider: { name: 'oidc', config: {} } }, true],
    ['a proxy', { proxyUrl: 'http://proxy:3128' }, { token: 't' }, true],
  ])('is loaded for %s: %s', (_, cluster, user, expected) => {
    expect(needsClientNode({ ...CLUSTER, ...cluster }, { name: 'u', ...user })).toBe(expected);
  });

  it('runs an exec plugin, and its token goes into the Authorization header', async () => {
    const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-exec' } };
    const creds = credentialsOf(config({ name: 'u', exec: {
      apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', `console.log(${JSON.stringify(JSON.stringify(credential))})`],
    } }));
    expect((await creds.authenticate(CLUSTER.server)).headers.Authorization).toBe('Bearer from-exec');
  });
});

describe('auth providers, as kubectl (1.26 and later) accepts them', () => {
  const marker = join(dir, 'auth-provider-ran');
  const fromFile = (user: object): KubeConfig => {
    const path = join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}`);
    writeFileSync(path, JSON.stringify({
      clusters: [{ name: 'c', cluster: { server: CLUSTER.server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user }, { name: 'fine', user: { token: 't' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }, { name: 'ok', context: { cluster: 'c', user: 'fine' } }],
      'current-context': 'x',
    }));
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return kc;
  };
  const shell = { 'cmd-path': '/bin/sh', 'cmd-args': `-c "touch ${marker}"`, 'token-key': '{.token}' };

  it.each([
    ['gcp', /The gcp auth plugin has been removed\.\nPlease use the "gke-gcloud-auth-plugin"/],
    ['azure', /The azure auth plugin has been removed\.\nPlease use the https:\/\/github.com\/Azure\/kubelogin/],
    ['exec', /no Auth Provider found for name "exec"/],
    [TOKEN_FILE_PROVIDER, /no Auth Provider found for name "tokenFile"/],
    ['whatever', /no Auth Provider found for name "whatever"/],
  ])('refuses the %s auth provider with kubectl\'s words, and runs nothing', async (name, message) => {
    const kc = fromFile({ 'auth-provider': { name, config: { ...shell, tokenFile: tokenFile, exec: { command: '/bin/sh', args: ['-c', `touch ${marker}`] } } } });
    expect(() => credentialsOf(kc)).toThrow(message);
    expect(() => credentialsOf(kc)).toThrow(/^the kubeconfig's user "u" cannot be used: /);
    // Another context of the same file is usable, as in kubectl.
    kc.setCurrentContext('ok');
    expect((await credentialsOf(kc).authenticate(CLUSTER.server)).headers.Authorization).toBe('Bearer t');
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a gcp provider handed over in client-node\'s own KubeConfig too', () => {
    const theirs = new ClientNodeKubeConfig();
    theirs.loadFromOptions({
      clusters: [{ name: 'c', server: CLUSTER.server, skipTLSVerify: true }],
      users: [{ name: 'u', authProvider: { name: 'gcp', config: shell } }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x',
    });
    expect(() => credentialsOf(theirs)).toThrow(/The gcp auth plugin has been removed/);
    expect(existsSync(marker)).toBe(false);
  });

  it('keeps an oidc provider with only the keys kubectl reads: an exec hidden in its config never runs', async () => {
    const idToken = `e30.${Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url')}.x`;
    const kc = fromFile({ 'auth-provider': { name: 'oidc', config: {
      'id-token': idToken, 'idp-issuer-url': 'https://issuer.example', 'client-id': 'k',
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command: '/bin/sh', args: ['-c', `touch ${marker}`] }, 'cmd-path': '/bin/sh',
    } } });
    expect(kc.getCurrentUser()?.authProvider).toEqual({ name: 'oidc', config: { 'id-token': idToken, 'idp-issuer-url': 'https://issuer.example', 'client-id': 'k' } });
    expect((await credentialsOf(kc).authenticate(CLUSTER.server)).headers.Authorization).toBe(`Bearer ${idToken}`);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses exec and auth-provider together', () => {
    const kc = fromFile({ exec: { command: 'x' }, 'auth-provider': { name: 'oidc', config: {} } });
    expect(() => credentialsOf(kc)).toThrow(/exec and auth-provider cannot be used in combination/);
  });
});
