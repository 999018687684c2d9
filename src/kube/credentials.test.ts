import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
