/**
 * Issue 18 item 7: a kubeconfig runs no command that kubectl would refuse to
 * run. A user whose `auth-provider` is gcp (client-node builds a shell
 * command from its cmd-path and cmd-args and runs it with execSync) or azure
 * is refused, with kubectl's own words, by the plugin and by
 * `apikey-operator console`, as real processes against the real control
 * plane; the command never runs. The same kubeconfig's other context, with a
 * ServiceAccount's token, still works, as in kubectl; `exec:` (kubectl's
 * credential plugins) still runs.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminKubeConfig, clusterState, createNamespace, kubectl, serviceAccountToken, type TestNamespace } from './support/cluster.ts';
import { runPlugin } from './support/plugin.ts';
import { MAIN, PLUGIN, startProcess } from './support/processes.ts';
import { createDeployment } from './support/resources.ts';

let ns: TestNamespace;
let dir: string;
let marker: string;
let kubeconfig: string;

/** A kubeconfig on the real apiserver: context "cloud" uses `provider`, context "sa" a ServiceAccount's token, exec one from a plugin. */
function writeKubeconfig(provider: object, token: string): string {
  const file = join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}`);
  const cluster = { server: clusterState().server, 'certificate-authority-data': adminKubeConfig().getCurrentCluster()?.caData ?? '' };
  const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token } });
  writeFileSync(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ name: 'c', cluster }],
    users: [
      { name: 'cloud', user: { 'auth-provider': provider } },
      { name: 'sa', user: { token } },
      { name: 'plugin', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', `console.log(${JSON.stringify(credential)})`] } } },
    ],
    contexts: [
      { name: 'cloud', context: { cluster: 'c', user: 'cloud', namespace: ns.name } },
      { name: 'sa', context: { cluster: 'c', user: 'sa', namespace: ns.name } },
      { name: 'exec', context: { cluster: 'c', user: 'plugin', namespace: ns.name } },
    ],
    'current-context': 'cloud',
  }), { mode: 0o600 });
  return file;
}

/** What an attacker's kubeconfig would hold: a provider whose "token refresh" is a shell command of theirs. */
const gcp = () => ({
  name: 'gcp',
  config: { 'cmd-path': '/bin/sh', 'cmd-args': `-c "touch ${marker}; echo {}"`, 'token-key': '{.token}', 'expiry-key': '{.expiry}' },
});

beforeAll(async () => {
  ns = await createNamespace('kubeconfig');
  dir = mkdtempSync(join(tmpdir(), 'kubeconfig-auth-'));
  marker = join(dir, 'the-command-ran');
  await createDeployment(ns.name, 'airflow');
  await kubectl(['create', 'serviceaccount', 'reader', '-n', ns.name]);
  await kubectl(['create', 'rolebinding', 'reader', '--clusterrole', 'view', '--serviceaccount', `${ns.name}:reader`, '-n', ns.name]);
  await kubectl(['create', 'clusterrole', `${ns.name}-apikeys`, '--verb', 'get,list', '--resource', 'apikeys.apikeys.dev,deployments.apikeys.dev']);
  await kubectl(['create', 'rolebinding', 'apikeys', '--clusterrole', `${ns.name}-apikeys`, '--serviceaccount', `${ns.name}:reader`, '-n', ns.name]);
  kubeconfig = writeKubeconfig(gcp(), await serviceAccountToken(ns.name, 'reader'));
}, 60_000);

afterAll(async () => {
  await kubectl(['delete', 'clusterrole', `${ns?.name}-apikeys`, '--ignore-not-found']);
  await ns?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a gcp or azure auth provider', () => {
  it('is refused by every plugin command with kubectl\'s message, and its command never runs', async () => {
    for (const args of [['list'], ['deployments'], ['describe', 'x'], ['token', '--deployment', 'airflow', '--token-url', 'https://127.0.0.1:9/oauth/token']]) {
      const r = await runPlugin(args, { kubeconfig, namespace: false });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/^error: cannot use the kubeconfig's context "cloud": the kubeconfig's user "cloud" cannot be used: The gcp auth plugin has been removed\. Please use the "gke-gcloud-auth-plugin" kubectl\/client-go credential plugin instead/);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(existsSync(marker), `${args.join(' ')} ran the provider's command`).toBe(false);
    }
  });

  it.each([
    ['apikey-operator console', [MAIN, 'console', '--kubeconfig', 'KUBECONFIG', '--open=false', '--port', '0']],
    ['kubectl apikey console', [PLUGIN, 'console', '--kubeconfig', 'KUBECONFIG', '--no-open', '--port', '0']],
  ])('is refused by %s before it listens, and its command never runs', async (_, args) => {
    const p = startProcess('console-gcp', args.map((a) => (a === 'KUBECONFIG' ? kubeconfig : a)), { KUBECONFIG: undefined });
    const code = await Promise.race([p.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 30_000))]);
    if (code === 'running') await p.stop();
    expect(code).toBe(1);
    expect(p.logs()).toContain('The gcp auth plugin has been removed.');
    expect(p.logs()).not.toMatch(/listening|sign in/);
    expect(existsSync(marker)).toBe(false);
  });

  it('is refused for azure too, with kubectl\'s pointer to kubelogin', async () => {
    const file = writeKubeconfig({ name: 'azure', config: { 'cmd-path': '/bin/sh', 'cmd-args': `-c "touch ${marker}"` } }, 'unused');
    const r = await runPlugin(['list'], { kubeconfig: file, namespace: false });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('The azure auth plugin has been removed. Please use the https://github.com/Azure/kubelogin kubectl/client-go credential plugin instead.');
    expect(existsSync(marker)).toBe(false);
  });

  it('does not stop the kubeconfig\'s other contexts: a token, and an exec credential plugin, as in kubectl', async () => {
    for (const context of ['sa', 'exec']) {
      const r = await runPlugin(['deployments', '--context', context], { kubeconfig, namespace: false });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^airflow\s/m);
    }
    expect(existsSync(marker)).toBe(false);
  });
});
