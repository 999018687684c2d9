import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig as ClientNodeKubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { KubeConfig, serviceAccountFiles, TOKEN_FILE_PROVIDER } from './kubeconfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(doc: object, folder = dir): string {
  mkdirSync(folder, { recursive: true });
  const path = join(folder, `config-${n++}`);
  writeFileSync(path, stringify({ apiVersion: 'v1', kind: 'Config', ...doc }));
  return path;
}

const exec = { apiVersion: 'client.authentication.k8s.io/v1', command: 'get-token', args: ['--cluster', 'prod'], env: [{ name: 'A', value: 'b' }] };
const oidc = { name: 'oidc', config: { 'id-token': 'x', 'idp-issuer-url': 'https://issuer.example' } };

/** One user of every kind, on one cluster of every kind: what the programs and the plugin meet. */
const users: [string, object][] = [
  ['a token', { token: 'abc' }],
  ['a token file', { 'token-file': join(dir, 'kc', 'token') }],
  ['a client certificate as data', { 'client-certificate-data': 'Y2VydA==', 'client-key-data': 'a2V5' }],
  ['a client certificate as files (relative)', { 'client-certificate': 'certs/me.crt', 'client-key': '/abs/me.key' }],
  ['a user name and password, impersonating', { username: 'me', password: 'pw', as: 'someone' }],
  ['an exec plugin', { exec }],
  ['an auth provider', { 'auth-provider': oidc }],
  ['nothing', {}],
];
const clusters: [string, object][] = [
  ['a CA as data, a trailing slash', { server: 'https://prod.example:6443/', 'certificate-authority-data': 'Y2E=' }],
  ['a CA file, a server name, a proxy', { server: 'https://10.0.0.1', 'certificate-authority': 'ca.crt', 'tls-server-name': 'kubernetes', 'proxy-url': 'socks5://p:1080' }],
  ['no TLS verification', { server: 'http://127.0.0.1:8080', 'insecure-skip-tls-verify': true }],
];

/** client-node writes null, false and undefined for what is not set; compare what is set. */
const setFields = (o: object | null) => Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== null && v !== undefined && v !== false));

describe('KubeConfig.loadFromFile', () => {
  const folder = join(dir, 'kc');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'token'), 'from-a-file');

  describe.each(users)('a user with %s', (_, user) => {
    it.each(clusters)('on a cluster with %s reads as client-node reads it', (__, cluster) => {
      const path = file({
        clusters: [{ name: 'c', cluster }], users: [{ name: 'u', user }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: 'team' } }], 'current-context': 'x',
      }, folder);
      const ours = new KubeConfig();
      ours.loadFromFile(path);
      const theirs = new ClientNodeKubeConfig();
      theirs.loadFromFile(path);
      expect(setFields(ours.getCurrentCluster())).toEqual(setFields(theirs.getCurrentCluster()));
      expect(setFields(ours.getCurrentUser())).toEqual(setFields(theirs.getCurrentUser()));
      expect(ours.getContextObject('x')).toEqual({ name: 'x', cluster: 'c', user: 'u', namespace: 'team' });
      expect(ours.getCurrentContext()).toBe('x');
    });
  });

  it('resolves relative paths against the kubeconfig\'s folder', () => {
    const path = file({
      clusters: [{ name: 'c', cluster: { server: 'https://a', 'certificate-authority': 'pki/ca.crt' } }],
      users: [{ name: 'u', user: { 'client-certificate': 'pki/me.crt', 'client-key': 'pki/me.key' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x',
    }, folder);
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    expect(kc.getCurrentCluster()?.caFile).toBe(join(folder, 'pki', 'ca.crt'));
    expect(kc.getCurrentUser()).toMatchObject({ certFile: join(folder, 'pki', 'me.crt'), keyFile: join(folder, 'pki', 'me.key') });
  });

  it('reads a relative token file from the kubeconfig\'s folder, as kubectl does (client-node reads it from the working directory)', () => {
    const path = file({ users: [{ name: 'u', user: { 'token-file': 'token' } }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }, folder);
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    expect(kc.getCurrentUser()?.token).toBe('from-a-file');
  });

  it.each([
    ['a cluster without a name', { clusters: [{ cluster: { server: 'https://a' } }] }, 'clusters[0].name is missing'],
    ['a cluster without a server', { clusters: [{ name: 'c', cluster: {} }] }, 'clusters[0].cluster.server is missing'],
    ['a user without a name', { users: [{ user: {} }] }, 'users[0].name is missing'],
    ['a context without a cluster', { contexts: [{ name: 'x', context: { user: 'u' } }] }, 'contexts[0].context.cluster is missing'],
  ])('refuses %s', (_, doc, message) => {
    expect(() => new KubeConfig().loadFromFile(file(doc))).toThrow(message);
  });

  it('has no current cluster or user when the current context names none that exists', () => {
    const kc = new KubeConfig();
    kc.loadFromFile(file({ clusters: [{ name: 'c', cluster: { server: 'https://a' } }], 'current-context': 'missing' }));
    expect(kc.getCurrentCluster()).toBeNull();
    expect(kc.getCurrentUser()).toBeNull();
  });
});

describe('KubeConfig.loadFromCluster', () => {
  afterEach(() => vi.unstubAllEnvs());
  const root = join(dir, 'pod');
  const sa = serviceAccountFiles(root);
  mkdirSync(join(root, 'var/run/secrets/kubernetes.io/serviceaccount'), { recursive: true });
  writeFileSync(sa.namespace, 'operator');

  it.each([
    ['10.96.0.1', '443', 'https://10.96.0.1:443'],
    ['fd00::1', '443', 'https://[fd00::1]:443'],
    ['kubernetes.default', '8080', 'http://kubernetes.default:8080'],
  ])('reaches the apiserver at %s port %s as %s, with the pod\'s CA, token file and namespace', (host, port, server) => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', host);
    vi.stubEnv('KUBERNETES_SERVICE_PORT', port);
    const kc = new KubeConfig();
    kc.loadFromCluster(root);
    expect(kc.getCurrentCluster()).toMatchObject({ server, caFile: sa.ca, skipTLSVerify: false });
    expect(kc.getCurrentUser()?.authProvider).toEqual({ name: TOKEN_FILE_PROVIDER, config: { tokenFile: sa.token } });
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('operator');
    const theirs = new ClientNodeKubeConfig();
    theirs.loadFromCluster(root);
    expect(kc.getCurrentCluster()).toEqual(theirs.getCurrentCluster());
    expect(kc.getCurrentUser()).toEqual(theirs.getCurrentUser());
  });
});
