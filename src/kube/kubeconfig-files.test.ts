import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, loadKubeConfig } from './config.ts';
import { kubeconfigPaths, mergeKubeconfigFiles } from './kubeconfig-files.ts';

const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(doc: object | string, folder = dir): string {
  mkdirSync(folder, { recursive: true });
  const path = join(folder, `config-${n++}`);
  writeFileSync(path, typeof doc === 'string' ? doc : stringify({ apiVersion: 'v1', kind: 'Config', ...doc }));
  return path;
}
const cluster = (name: string, server: string) => ({ name, cluster: { server } });
const user = (name: string, token: string) => ({ name, user: { token } });
const context = (name: string, c: string, u: string, namespace?: string) => ({ name, context: { cluster: c, user: u, namespace } });

describe('kubeconfigPaths', () => {
  it.each([
    ['a', ['a']],
    ['a:b', ['a', 'b']],
    [':a::b:', ['a', 'b']],
    ['a:b:a', ['a', 'b']],
  ])('reads %j as %j', (list, files) => {
    expect(kubeconfigPaths(list)).toEqual(files);
  });
});

describe('mergeKubeconfigFiles', () => {
  it('takes the cluster from one file and the user and context from another', () => {
    const clusters = file({ clusters: [cluster('prod', 'https://prod.example:6443')] });
    const creds = file({ users: [user('me', 't1')], contexts: [context('work', 'prod', 'me', 'team')], 'current-context': 'work' });
    const kc = mergeKubeconfigFiles([clusters, creds])!;
    expect(kc.getCurrentContext()).toBe('work');
    expect(kc.getCurrentCluster()?.server).toBe('https://prod.example:6443');
    expect(kc.getCurrentUser()?.token).toBe('t1');
    expect(kc.getContextObject('work')?.namespace).toBe('team');
  });

  it('lets the first file win for every name defined twice, without an error', () => {
    const first = file({ clusters: [cluster('c', 'https://first:6443')], users: [user('u', 'first')], contexts: [context('x', 'c', 'u', 'one')] });
    const second = file({
      clusters: [cluster('c', 'https://second:6443'), cluster('d', 'https://d:6443')],
      users: [user('u', 'second')], contexts: [context('x', 'd', 'u', 'two')], 'current-context': 'x',
    });
    const kc = mergeKubeconfigFiles([first, second])!;
    expect(kc.getClusters().map((c) => [c.name, c.server])).toEqual([['c', 'https://first:6443'], ['d', 'https://d:6443']]);
    expect(kc.getUsers().map((u) => u.token)).toEqual(['first']);
    expect(kc.getContextObject('x')).toMatchObject({ cluster: 'c', namespace: 'one' });
  });

  it.each([
    ['the first file that sets it', ['a', 'b'], 'a'],
    ['a later file when the earlier ones set none', [undefined, 'b'], 'b'],
  ])('takes current-context from %s', (_case, currents, expected) => {
    const files = currents.map((current) => file({
      clusters: [cluster('c', 'https://c:6443')], users: [user('u', 't')],
      contexts: [context('a', 'c', 'u'), context('b', 'c', 'u')], ...(current ? { 'current-context': current } : {}),
    }));
    expect(mergeKubeconfigFiles(files)!.getCurrentContext()).toBe(expected);
  });

  it('skips files that do not exist and empty files, and resolves relative paths against their own folder', () => {
    const sub = join(dir, 'sub');
    const withCa = file({ clusters: [{ name: 'c', cluster: { server: 'https://c:6443', 'certificate-authority': 'ca.crt' } }] }, sub);
    const rest = file({ users: [user('u', 't')], contexts: [context('x', 'c', 'u')], 'current-context': 'x' });
    const kc = mergeKubeconfigFiles([join(dir, 'absent'), file(''), withCa, rest])!;
    expect(kc.getCurrentCluster()?.caFile).toBe(join(sub, 'ca.crt'));
  });

  it('is undefined when none of the files exists', () => {
    expect(mergeKubeconfigFiles([join(dir, 'absent-1'), join(dir, 'absent-2')])).toBeUndefined();
  });
});

describe('loadKubeConfig with a list of files', () => {
  it('merges every file of --kubeconfig or KUBECONFIG', () => {
    const clusters = file({ clusters: [cluster('prod', 'https://prod.example:6443')] });
    const creds = file({ users: [user('me', 't1')], contexts: [context('work', 'prod', 'me')], 'current-context': 'work' });
    expect(loadKubeConfig({ kubeconfig: `${clusters}:${creds}` }).getCurrentCluster()?.server).toBe('https://prod.example:6443');
  });

  it('names the files when none exists', () => {
    expect(() => loadKubeConfig({ kubeconfig: `${join(dir, 'x')}:${join(dir, 'y')}` }))
      .toThrow(new ConfigError(`none of the kubeconfig files ${join(dir, 'x')}, ${join(dir, 'y')} exists`));
  });
});
