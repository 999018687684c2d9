/**
 * The README's first command, driven as a user runs it: `npm start` brings up
 * its own control plane, the operator and the example key, prints the curl,
 * fetches a token and shows its claims; here with --exit-after-token so that
 * it stops everything by itself, within a time limit.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, isRunning, readState, up } from './cluster/controlplane.ts';
import { kubectl } from './support/cluster.ts';
import { ROOT } from './support/paths.ts';

const exec = promisify(execFile);

it('npm start runs the operator end to end, prints a token\'s claims and the console\'s sign-in URL, then stops everything', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quickstart-'));
  try {
    const { stdout } = await exec('npm', ['start', '--silent', '--', '--exit-after-token', '--dir', dir], {
      cwd: ROOT, timeout: 150_000, maxBuffer: 8 * 1024 * 1024,
    });
    expect(stdout).toMatch(/API_KEY_ID=ak_[a-z2-7]{26}/);
    expect(stdout).toMatch(/curl -s -X POST http:\/\/127\.0\.0\.1:\d+\/oauth\/token -H 'content-type: application\/json'/);
    expect(stdout).toContain('"grant_type":"client_credentials"');
    expect(stdout).toMatch(/HTTP 200: a 86400s access token/);
    expect(stdout).toContain('"deployment": "default/airflow-prod"');
    expect(stdout).toContain('"aud": "https://airflow-prod.example.com"');
    expect(stdout).not.toMatch(/aks_[0-9A-Za-z]{49}/);
    // The web console's sign-in URL, on a line of its own; stopped with everything else.
    const consoleUrl = /^(http:\/\/127\.0\.0\.1:\d+)\/sign-in\?code=[\w-]+$/m.exec(stdout);
    expect(consoleUrl, stdout).not.toBeNull();
    await expect(fetch(`${consoleUrl![1]}/healthz`)).rejects.toThrow();
    const state = readState(dir)!;
    for (const p of state.processes) expect(isRunning(p)).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 180_000);

it('says clearly that the control plane is not built, and what is missing, when Go is absent', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'empty-cache-'));
  try {
    const r = await exec(process.execPath, [join(ROOT, 'test/cluster/cli.ts'), 'up', '--dir', join(cache, 'cp')], {
      env: { ...process.env, APIKEY_OPERATOR_CACHE: cache, PATH: '/nonexistent' },
    }).then(() => undefined, (e: unknown) => e as { code: number; stderr: string });
    expect(r?.code).toBe(1);
    expect(r?.stderr).toMatch(/is not built yet, and there is no Go toolchain to build it: 'go' is not on PATH/);
    expect(r?.stderr).toContain('kubernetes 1.36.3');
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

it('npm start on a machine without the binaries says so first, and why it cannot build them', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'empty-cache-'));
  try {
    const r = await exec(process.execPath, [join(ROOT, 'scripts/quickstart.ts'), '--dir', join(cache, 'qs')], {
      env: { ...process.env, APIKEY_OPERATOR_CACHE: cache, PATH: '/nonexistent' },
    }).then(() => undefined, (e: unknown) => e as { code: number; stdout: string; stderr: string });
    expect(r?.code).toBe(1);
    expect(r?.stdout).toMatch(/The local control plane is not built yet \(etcd 3\.6\.16, kubernetes 1\.36\.3, helm 4\.3\.1\)/);
    expect(r?.stdout).toMatch(/the first build takes several minutes/);
    expect(r?.stderr).toMatch(/no Go toolchain to build it/);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

describe('npm start --kubeconfig (an existing cluster)', () => {
  // A control plane of its own: the quick start installs into the fixed namespace apikey-operator
  // and fixed ClusterRole names, which the kubectl apply test of the install manifests also uses.
  let dir: string;
  let admin: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quickstart-existing-'));
    admin = (await up(dir, { log: () => undefined })).kubeconfig;
  }, 120_000);
  afterAll(async () => {
    await down(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('tells what it will install, and installs nothing without a yes', async () => {
    const r = await exec('npm', ['start', '--silent', '--', '--kubeconfig', admin], { cwd: ROOT })
      .then(() => undefined, (e: unknown) => e as { code: number; stdout: string });
    expect(r?.code).toBe(1);
    expect(r?.stdout).toContain('This will install there:');
    expect(r?.stdout).toContain('the CRDs deployments.apikeys.dev, apikeys.apikeys.dev, federatedcredentials.apikeys.dev and audienceclaims.apikeys.dev');
    expect(r?.stdout).toContain('Not a terminal: pass --yes to go ahead.');
    expect((await kubectl(['get', 'namespace', 'apikey-operator'], { kubeconfig: admin })).code).not.toBe(0);
    expect((await kubectl(['get', 'crd', 'apikeys.apikeys.dev'], { kubeconfig: admin })).code).not.toBe(0);
  });

  it('with --yes, installs there and fetches a token', async () => {
    const { stdout } = await exec('npm', ['start', '--silent', '--', '--kubeconfig', admin, '--yes', '--exit-after-token'], {
      cwd: ROOT, timeout: 120_000, maxBuffer: 8 * 1024 * 1024,
    });
    expect(stdout).toMatch(/HTTP 200: a 86400s access token/);
    expect(stdout).toContain('"deployment": "default/airflow-prod"');
    const installed = await kubectl(['get', 'namespace/apikey-operator', 'crd/apikeys.apikeys.dev', 'apikeys.apikeys.dev/ci-deployer', '-n', 'default', '-o', 'name'], { kubeconfig: admin });
    expect(installed.code, installed.stderr).toBe(0);
  }, 150_000);
});
