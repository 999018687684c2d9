/**
 * The kubectl plugin behaves like kubectl (ecosystem issue item 3), as real
 * processes against the real control plane with the real controller: -o
 * name|wide|jsonpath, --no-headers and -l on the list commands; delete of
 * several keys and --all with kubectl's confirmation rules; create
 * --dry-run=client -o yaml, whose manifest the API server then accepts;
 * version; shell completion through the real kubectl's __complete and
 * kubectl_complete-apikey on PATH; and the single executable (built by npm
 * run build:plugin-sea, cached by input hash) running version, list and
 * completion.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { API_VERSION, type ApiKey, type ApiKeySpec } from '../src/api/index.ts';
import { clusterState, createNamespace, kubectl, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { ROOT } from './support/paths.ts';
import { runPlugin, runPluginOnTerminal, type PluginOptions } from './support/plugin.ts';
import { startController, type RunningProcess } from './support/processes.ts';
import { adminClient, apiKeyPath, createDeployment, getApiKey, getDeployment, waitForReady } from './support/resources.ts';
import { run, type Run } from './support/run.ts';
import { waitFor } from './support/wait.ts';

const COMPLETE = join(ROOT, 'src', 'cli', 'kubectl_complete-apikey.ts');
const PLUGIN_ENTRY = join(ROOT, 'src', 'cli', 'kubectl-apikey.ts');

let ns: TestNamespace;
let other: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let dir: string;

const plugin = (args: string[], opts: Partial<PluginOptions> = {}) => runPlugin(args, { namespace: ns.name, ...opts });
/** The admin's kubeconfig and the test's namespace, as words of a command line being completed. */
const conn = () => ['--kubeconfig', clusterState().kubeconfig, '-n', ns.name];

function expectCleanFailure(r: Run, code: number, ...fragments: RegExp[]): void {
  expect(r.code, `stderr: ${r.stderr}`).toBe(code);
  expect(r.stderr).toMatch(/^error: /m);
  expect(r.stderr).not.toMatch(/\n\s+at |node:internal/);
  for (const f of fragments) expect(r.stderr).toMatch(f);
}

function createLabelledKey(namespace: string, name: string, labels: Record<string, string>, spec: Partial<ApiKeySpec> = {}): Promise<ApiKey> {
  return adminClient().create<ApiKey>(apiKeyPath(namespace), {
    apiVersion: API_VERSION, kind: 'ApiKey', metadata: { name, labels }, spec: { deploymentRef: { name: 'airflow' }, ...spec },
  });
}

/** A directory for PATH with kubectl-apikey and kubectl_complete-apikey running this checkout's sources. */
function pluginPath(): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const wrapper = (entry: string) => `#!/bin/sh\nexec '${process.execPath}' '${entry}' "$@"\n`;
  writeFileSync(join(bin, 'kubectl-apikey'), wrapper(PLUGIN_ENTRY), { mode: 0o755 });
  writeFileSync(join(bin, 'kubectl_complete-apikey'), wrapper(COMPLETE), { mode: 0o755 });
  return bin;
}

/** kubectl's own `__complete` (what its shell completion script calls) for `kubectl apikey WORDS`, with `bin` on PATH. */
async function kubectlComplete(bin: string, words: string[]): Promise<{ candidates: string[]; directive: string }> {
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, KUBECONFIG: undefined };
  const r = await run(clusterState().binaries.kubectl, ['__complete', 'apikey', ...words], { env, timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.trimEnd().split('\n');
  return { candidates: lines.slice(0, -1).map((l) => l.split('\t')[0]!), directive: lines[lines.length - 1]! };
}

beforeAll(async () => {
  ns = await createNamespace('plugin-like');
  other = await createNamespace('plugin-like-other');
  dir = mkdtempSync(join(tmpdir(), 'kubectl-plugin-like-'));
  identity = await installOperatorIdentity();
  controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace });
  await createDeployment(ns.name, 'airflow', { description: 'the Airflow of CI' });
  await adminClient().create(`/apis/apikeys.dev/v1/namespaces/${ns.name}/deployments`, {
    apiVersion: API_VERSION, kind: 'Deployment', metadata: { name: 'billing', labels: { tier: 'gold' } }, spec: {},
  });
  await createLabelledKey(ns.name, 'ci', { team: 'ci' }, { description: 'GitHub Actions deploy job', rotation: { every: '2160h', gracePeriod: '30m' } });
  await createLabelledKey(ns.name, 'ci-nightly', { team: 'ci', schedule: 'nightly' });
  await createLabelledKey(ns.name, 'dashboard', { team: 'web' }, { permissions: ['read'] });
  await createDeployment(other.name, 'airflow');
  await createLabelledKey(other.name, 'elsewhere', { team: 'ci' });
  for (const name of ['ci', 'ci-nightly', 'dashboard']) await waitForReady(ns.name, name);
  await waitForReady(other.name, 'elsewhere');
  await waitFor('the key count of airflow', async () => (await getDeployment(ns.name, 'airflow'))?.status?.apiKeys === 3);
});

afterAll(async () => {
  await controller?.stop();
  await identity?.cleanup();
  await ns?.cleanup();
  await other?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('output flags of list and deployments', () => {
  it('prints resource/name lines with -o name, as kubectl get does', async () => {
    const keys = await plugin(['list', '-o', 'name']);
    expect(keys.code, keys.stderr).toBe(0);
    expect(keys.stdout).toBe('apikey.apikeys.dev/ci\napikey.apikeys.dev/ci-nightly\napikey.apikeys.dev/dashboard\n');
    const deployments = await plugin(['deployments', '-o', 'name']);
    expect(deployments.stdout).toBe('deployment.apikeys.dev/airflow\ndeployment.apikeys.dev/billing\n');
  });

  it('adds the secret, expiry time, rotation and description columns with -o wide', async () => {
    const r = await plugin(['list', '-o', 'wide']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^NAME\s+DEPLOYMENT\s+KEY ID\s+PERMISSIONS\s+READY\s+EXPIRES\s+LAST USED\s+AGE\s+SECRET\s+EXPIRES AT\s+ROTATION\s+LAST ROTATION\s+DESCRIPTION$/);
    expect(r.stdout).toMatch(/^ci\s+airflow\s+ak_\w+\s+deploy\s+True\s+<never>\s+never\s+\S+\s+ci\s+<never>\s+every 2160h, grace 30m\s+<never>\s+GitHub Actions deploy job$/m);
    const d = await plugin(['deployments', '-o', 'wide']);
    expect(d.stdout).toMatch(/^airflow\s+3\s+24h\s+<default>\s+True\s+\S+\s+the Airflow of CI$/m);
  });

  it('leaves the header line out with --no-headers, in the default and the wide table and with -A', async () => {
    for (const args of [['list'], ['list', '-o', 'wide'], ['deployments']]) {
      const r = await plugin([...args, '--no-headers']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toMatch(/NAME/);
      expect(r.stdout.split('\n')[0]).toMatch(/^(ci|airflow)\s/);
    }
    const all = await plugin(['list', '-A', '--no-headers'], { namespace: false });
    expect(all.stdout).toMatch(new RegExp(`^${other.name}\\s+elsewhere\\s+airflow`, 'm'));
    expect(all.stdout).not.toMatch(/NAMESPACE/);
  });

  it('lists only the objects whose labels match -l/--selector, in a namespace or across all', async () => {
    const ci = await plugin(['list', '-l', 'team=ci', '-o', 'name']);
    expect(ci.stdout).toBe('apikey.apikeys.dev/ci\napikey.apikeys.dev/ci-nightly\n');
    const notNightly = await plugin(['list', '--selector', 'team=ci,!schedule', '-o', 'name']);
    expect(notNightly.stdout).toBe('apikey.apikeys.dev/ci\n');
    const everywhere = await plugin(['list', '-A', '-l', 'team=ci', '--no-headers'], { namespace: false });
    expect(everywhere.stdout.trimEnd().split('\n').map((l) => l.split(/\s+/).slice(0, 2).join('/'))).toEqual(
      [`${ns.name}/ci`, `${ns.name}/ci-nightly`, `${other.name}/elsewhere`].sort());
    const gold = await plugin(['deployments', '-l', 'tier=gold', '-o', 'name']);
    expect(gold.stdout).toBe('deployment.apikeys.dev/billing\n');
    const none = await plugin(['list', '-l', 'team=nobody']);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain(`No ApiKeys found in namespace ${ns.name}.`);
    expectCleanFailure(await plugin(['list', '-l', 'team in (']), 1, /cannot list apikeys\.apikeys\.dev/);
  });

  it('applies kubectl JSONPath templates to the List: names, one field, and a range with newlines', async () => {
    const ak = (await getApiKey(ns.name, 'ci'))!;
    const names = await plugin(['list', '-o', 'jsonpath={.items[*].metadata.name}']);
    expect(names.code, names.stderr).toBe(0);
    expect(names.stdout).toBe('ci ci-nightly dashboard');
    const keyId = await plugin(['list', '-l', 'team=ci,!schedule', '-o', 'jsonpath={.items[0].status.keyId}']);
    expect(keyId.stdout).toBe(ak.status!.keyId);
    const lines = await plugin(['list', '-o', 'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.status.keyId}{"\\n"}{end}']);
    expect(lines.stdout.split('\n')[0]).toBe(`ci\t${ak.status!.keyId}`);
    expect(lines.stdout.split('\n')).toHaveLength(4);
    const described = await plugin(['describe', 'ci', '-o', 'jsonpath={.apiKey.status.keyId}']);
    expect(described.stdout).toBe(ak.status!.keyId);
    const filtered = await plugin(['deployments', '-o', 'jsonpath={.items[?(@.metadata.name=="airflow")].status.apiKeys}']);
    expect(filtered.stdout).toBe('3');
  });

  it('refuses a format a command does not have, and a broken template, with exit code 2', async () => {
    expectCleanFailure(await plugin(['describe', 'ci', '-o', 'wide']), 2, /-o wide is not supported here/);
    expectCleanFailure(await plugin(['list', '-o', 'jsonpath={range .items[*]}{.metadata.name}']), 2, /\{range\} without \{end\}/);
    expectCleanFailure(await plugin(['list', '-o', 'table']), 2, /-o jsonpath=TEMPLATE/);
  });
});

describe('create --dry-run=client', () => {
  it('prints the ApiKey manifest without creating it, and the API server accepts that manifest', async () => {
    const r = await plugin(['create', 'gitops', '--deployment', 'airflow', '--permissions', 'read', '--rotate-every', '720h', '--dry-run=client', '-o', 'yaml']);
    expect(r.code, r.stderr).toBe(0);
    const manifest = parseYaml(r.stdout) as ApiKey;
    expect(manifest).toEqual({
      apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', metadata: { name: 'gitops', namespace: ns.name },
      spec: { deploymentRef: { name: 'airflow' }, permissions: ['read'], rotation: { every: '720h' } },
    });
    expect(r.stderr).toBe('');
    expect(await getApiKey(ns.name, 'gitops')).toBeUndefined();
    const applied = await kubectl(['apply', '-f', '-'], { input: r.stdout });
    expect(applied.code, applied.stderr).toBe(0);
    expect((await waitForReady(ns.name, 'gitops')).spec.permissions).toEqual(['read']);
  });

  it('writes no namespace without -n, prints kubectl\'s dry-run line without -o, and needs no cluster', async () => {
    const r = await plugin(['create', 'portable', '--deployment', 'airflow', '--dry-run=client', '-o', 'json'],
      { namespace: false, kubeconfig: join(dir, 'no-such-kubeconfig') });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as ApiKey).metadata).toEqual({ name: 'portable' });
    const line = await plugin(['create', 'portable', '--deployment', 'airflow', '--dry-run=client']);
    expect(line.stdout).toBe('apikey.apikeys.dev/portable created (dry run)\n');
    expectCleanFailure(await plugin(['create', 'x', '--deployment', 'airflow', '--dry-run=server']), 2, /--dry-run must be client or none/);
    expect(await getApiKey(ns.name, 'portable')).toBeUndefined();
  });
});

describe('delete of several keys and --all', () => {
  it('deletes nothing when one of the names does not exist', async () => {
    await createLabelledKey(ns.name, 'tmp-a', { batch: 'x' });
    await createLabelledKey(ns.name, 'tmp-b', { batch: 'x' });
    await waitForReady(ns.name, 'tmp-a');
    await waitForReady(ns.name, 'tmp-b');
    expectCleanFailure(await plugin(['delete', 'tmp-a', 'nope', 'tmp-b', '--yes']), 1, /ApiKey "nope" not found/);
    expect(await getApiKey(ns.name, 'tmp-a')).toBeDefined();
    expect(await getApiKey(ns.name, 'tmp-b')).toBeDefined();
  });

  it('refuses several names or --all without --yes when stdin is not a terminal', async () => {
    expectCleanFailure(await plugin(['delete', 'tmp-a', 'tmp-b']), 2, /refusing to delete ApiKey "tmp-a", ApiKey "tmp-b" without confirmation/);
    expectCleanFailure(await plugin(['delete', '--all']), 2, /refusing to delete every ApiKey without confirmation/, /--yes/);
    expectCleanFailure(await plugin(['delete']), 2, /NAME\.\.\. or --all/);
    expectCleanFailure(await plugin(['delete', 'tmp-a', '--all', '--yes']), 2, /names or --all, not both/);
    expect(await getApiKey(ns.name, 'tmp-a')).toBeDefined();
  });

  it('asks once on a terminal, listing every key: "n" keeps them all, "y" deletes them all', async () => {
    const no = await runPluginOnTerminal(['delete', 'tmp-a', 'tmp-b'], 'n\n', { namespace: ns.name });
    expect(no.code, no.stdout).toBe(1);
    expect(no.stdout).toMatch(/Delete these 2 ApiKeys in namespace/);
    expect(no.stdout).toMatch(/ApiKey "tmp-a" \(key id ak_\w+, Deployment "airflow"\), Secret "tmp-a"/);
    expect(no.stdout).toMatch(/ApiKey "tmp-b"/);
    expect(no.stdout.match(/\[y\/N\]/g)).toHaveLength(1);
    expect(await getApiKey(ns.name, 'tmp-a')).toBeDefined();
    const yes = await runPluginOnTerminal(['delete', 'tmp-a', 'tmp-b'], 'y\n', { namespace: ns.name });
    expect(yes.code, yes.stdout).toBe(0);
    expect(yes.stdout).toContain('"tmp-a" deleted');
    expect(yes.stdout).toContain('"tmp-b" deleted');
    expect(await getApiKey(ns.name, 'tmp-a')).toBeUndefined();
    expect(await getApiKey(ns.name, 'tmp-b')).toBeUndefined();
  });

  it('deletes every key of the namespace with --all --yes, and no other namespace\'s', async () => {
    const scratch = await createNamespace('plugin-like-all');
    try {
      await createDeployment(scratch.name, 'airflow');
      for (const name of ['one', 'two', 'three']) await createLabelledKey(scratch.name, name, {});
      const r = await plugin(['delete', '--all', '--yes'], { namespace: scratch.name });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.match(/deleted/g)).toHaveLength(3);
      expect((await adminClient().list<ApiKey>(apiKeyPath(scratch.name))).items).toEqual([]);
      expect(await getApiKey(other.name, 'elsewhere')).toBeDefined();
      const again = await plugin(['delete', '--all', '--yes'], { namespace: scratch.name });
      expect(again.code).toBe(0);
      expect(again.stderr).toContain(`No ApiKeys found in namespace ${scratch.name}.`);
    } finally {
      await scratch.cleanup();
    }
  });
});

describe('kubectl apikey version', () => {
  it("prints the plugin's version, and kubectl version's structure with -o json and -o yaml", async () => {
    const text = await plugin(['version'], { namespace: false });
    expect(text.stdout).toBe('Client Version: v0.2.0\n');
    const json = JSON.parse((await plugin(['version', '-o', 'json'], { namespace: false })).stdout) as { clientVersion: Record<string, string> };
    expect(json.clientVersion).toMatchObject({ major: '0', minor: '2', gitVersion: 'v0.2.0' });
    expect(json.clientVersion.platform).toMatch(/^linux\/\w+$/);
    const yaml = parseYaml((await plugin(['version', '-o', 'yaml'], { namespace: false })).stdout) as typeof json;
    expect(yaml).toEqual(json);
  });
});

describe('shell completion through kubectl', () => {
  let bin: string;
  beforeAll(() => { bin = pluginPath(); });

  it('completes the command names, with cobra\'s no-file directive', async () => {
    const r = await kubectlComplete(bin, ['de']);
    expect(r.candidates).toEqual(['describe', 'delete', 'deployments']);
    expect(r.directive).toBe(':4');
  });

  it("completes a command's flags and the values of -o", async () => {
    expect((await kubectlComplete(bin, ['list', '--no-h'])).candidates).toEqual(['--no-headers']);
    expect((await kubectlComplete(bin, ['list', '-o', ''])).candidates).toEqual(['json', 'yaml', 'name', 'wide', 'jsonpath=']);
  });

  it('completes key and Deployment names from the cluster, in the namespace and with the kubeconfig of the words', async () => {
    expect((await kubectlComplete(bin, ['describe', ...conn(), 'c'])).candidates).toEqual(['ci', 'ci-nightly']);
    expect((await kubectlComplete(bin, ['delete', ...conn(), 'ci', ''])).candidates).toEqual(['ci-nightly', 'dashboard', 'gitops']);
    expect((await kubectlComplete(bin, ['create', 'x', ...conn(), '--deployment', ''])).candidates).toEqual(['airflow', 'billing']);
    const elsewhere = await kubectlComplete(bin, ['rotate', '--kubeconfig', clusterState().kubeconfig, `--namespace=${other.name}`, '']);
    expect(elsewhere.candidates).toEqual(['elsewhere']);
    const namespaces = await kubectlComplete(bin, ['list', '--kubeconfig', clusterState().kubeconfig, '-n', 'plugin-like-oth']);
    expect(namespaces.candidates).toEqual([other.name]);
  });

  it('offers nothing, and prints no error into the shell, when the cluster cannot be read', async () => {
    const r = await kubectlComplete(bin, ['describe', '--kubeconfig', join(dir, 'missing'), '']);
    expect(r).toEqual({ candidates: [], directive: ':4' });
  });

  it('gives up within seconds on an API server that accepts the connection and never answers', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const kubeconfig = join(dir, 'silent-kubeconfig');
      writeFileSync(kubeconfig, [
        'apiVersion: v1', 'kind: Config', 'current-context: silent',
        `clusters: [{name: silent, cluster: {server: "https://127.0.0.1:${(silent.address() as AddressInfo).port}", insecure-skip-tls-verify: true}}]`,
        'users: [{name: silent, user: {token: not-a-real-token}}]',
        'contexts: [{name: silent, context: {cluster: silent, user: silent}}]', '',
      ].join('\n'));
      const started = Date.now();
      const r = await kubectlComplete(bin, ['describe', '--kubeconfig', kubeconfig, '']);
      expect(r).toEqual({ candidates: [], directive: ':4' });
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      silent.close();
    }
  });
});

describe('the single executable (npm run build:plugin-sea)', () => {
  let exe: string;
  beforeAll(async () => {
    const out = join(dir, 'sea');
    const r = await run(process.execPath, [join(ROOT, 'scripts', 'build-plugin-sea.ts'), '--out', out], { cwd: ROOT, timeoutMs: 280_000 });
    expect(r.code, r.stderr).toBe(0);
    exe = r.stdout.trimEnd().split('\n').pop()!;
    expect(exe).toBe(join(out, 'kubectl-apikey'));
  }, 300_000);

  it('runs version and list against the control plane without Node.js on PATH', async () => {
    const empty = join(dir, 'empty-path');
    mkdirSync(empty, { recursive: true });
    const env = { PATH: empty, HOME: dir };
    const version = await run(exe, ['version'], { env });
    expect(version.stdout, version.stderr).toBe('Client Version: v0.2.0\n');
    const list = await run(exe, ['list', '--kubeconfig', clusterState().kubeconfig, '-n', ns.name], { env });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+DEPLOYMENT\s+KEY ID/);
    expect(list.stdout).toMatch(/^ci\s+airflow\s+ak_\w+/m);
    const missing = await run(exe, ['describe', 'nope', '--kubeconfig', clusterState().kubeconfig, '-n', ns.name], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: ApiKey "nope" not found/);
  });

  it('is also kubectl_complete-apikey when linked under that name, for kubectl', async () => {
    const seaBin = join(dir, 'sea-bin');
    mkdirSync(seaBin);
    symlinkSync(exe, join(seaBin, 'kubectl-apikey'));
    symlinkSync(exe, join(seaBin, 'kubectl_complete-apikey'));
    const r = await kubectlComplete(seaBin, ['describe', ...conn(), 'dash']);
    expect(r).toEqual({ candidates: ['dashboard'], directive: ':4' });
  });
});
