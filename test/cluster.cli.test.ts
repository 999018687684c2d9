/**
 * The cluster:up / cluster:down commands are part of the interface: run them
 * exactly as a user would, from npm, and check that nothing is left behind.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { isRunning, readState } from './cluster/controlplane.ts';
import { ROOT } from './support/paths.ts';

const exec = promisify(execFile);

it('npm run cluster:up starts a control plane that kubectl can use, and cluster:down stops every process', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cluster-cli-'));
  try {
    await exec('npm', ['run', '--silent', 'cluster:up', '--', '--dir', dir], { cwd: ROOT });
    const state = readState(dir)!;
    expect(state.processes.map((p) => p.name)).toEqual(['etcd', 'kube-apiserver', 'kube-controller-manager']);
    const { stdout } = await exec(state.binaries.kubectl, ['--kubeconfig', join(dir, 'kubeconfig'), 'get', 'ns', '-o', 'name']);
    expect(stdout).toContain('namespace/kube-system');
    const pids = state.processes;
    await exec('npm', ['run', '--silent', 'cluster:down', '--', '--dir', dir], { cwd: ROOT });
    for (const p of pids) expect(isRunning(p), `${p.name} (${p.pid}) still running`).toBe(false);
  } finally {
    const state = readState(dir);
    if (state?.processes.length) await exec('npm', ['run', '--silent', 'cluster:down', '--', '--dir', dir], { cwd: ROOT });
    rmSync(dir, { recursive: true, force: true });
  }
}, 180_000);
