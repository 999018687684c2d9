/**
 * The controller limited to some namespaces (--namespaces, with the chart's
 * watchNamespaces RBAC: rights only there), and the shipped examples applied
 * with kubectl as a user would; the long-running example's script run by a
 * real /bin/sh against the real token server, across a real key rotation.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig, type V1Deployment, type V1Job } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { clusterState, createNamespace, kubectl, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { projectSecret } from './support/kubelet.ts';
import { ROOT } from './support/paths.ts';
import { startController, startTokenServer, type RunningProcess } from './support/processes.ts';
import {
  adminClient, createApiKey, createDeployment, credentialsOf, getApiKey, getSecret, waitForReady, waitUntilAudienceFree, type Credentials,
} from './support/resources.ts';
import { waitFor } from './support/wait.ts';

let watched: TestNamespace;
let other: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;

beforeAll(async () => {
  watched = await createNamespace('watched');
  other = await createNamespace('other');
  identity = await installOperatorIdentity({ watchNamespaces: [watched.name] });
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, args: ['--namespaces', watched.name],
  });
});

afterAll(async () => {
  await controller?.stop();
  await identity?.cleanup();
  for (const n of [watched, other]) await n?.cleanup();
});

describe('a controller watching some namespaces, with rights only there', () => {
  it('has no rights on Secrets or ApiKeys in other namespaces', async () => {
    const as = `system:serviceaccount:${identity.namespace}:${identity.controllerServiceAccount}`;
    const can = async (verb: string, res: string, ns: string) =>
      (await kubectl(['auth', 'can-i', verb, res, '-n', ns, '--as', as])).stdout.trim();
    expect(await can('create', 'secrets', watched.name)).toBe('yes');
    expect(await can('create', 'secrets', other.name)).toBe('no');
    expect(await can('list', 'apikeys.apikeys.dev', other.name)).toBe('no');
  });

  it('reconciles keys in its namespaces and leaves the others alone', async () => {
    await createDeployment(watched.name, 'dep');
    await createDeployment(other.name, 'dep');
    await createApiKey(watched.name, 'mine', { deploymentRef: { name: 'dep' } });
    await createApiKey(other.name, 'theirs', { deploymentRef: { name: 'dep' } });
    await waitForReady(watched.name, 'mine');
    await sleep(2_000);
    // Never written: the CRD's default status, which says no generation has been observed.
    expect((await getApiKey(other.name, 'theirs'))?.status).toEqual({ observedGeneration: 0 });
    expect(await getSecret(other.name, 'theirs')).toBeUndefined();
    expect(controller.isRunning()).toBe(true);
  });
});

describe('manifests/examples', () => {
  it('apply with kubectl, and their keys become Ready with the documented Secrets', async () => {
    const files = readdirSync(join(ROOT, 'manifests/examples')).filter((f) => f.endsWith('.yaml'));
    expect(files).toEqual(expect.arrayContaining([
      'deployment.yaml', 'apikey-ci.yaml', 'apikey-rotated.yaml', 'job-fetch-token.yaml', 'long-running-worker.yaml',
      'federatedcredential-github.yaml',
    ]));
    // The examples' audience belongs to the first Deployment that lists it: another test's copy must be gone first.
    await waitUntilAudienceFree('https://airflow-prod.example.com');
    const r = await kubectl(['apply', '-n', watched.name, '-f', join(ROOT, 'manifests/examples')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('deployment.apikeys.dev/airflow-prod created');
    expect(r.stdout).toContain('job.batch/fetch-token created');
    expect(r.stdout).toContain('deployment.apps/dag-sync created');
    // Keyless CI: the workflow in github-actions/ is no Kubernetes object, so kubectl leaves the folder alone.
    expect(r.stdout).toContain('federatedcredential.apikeys.dev/github-deploy-dags created');
    const ci = await waitForReady(watched.name, 'ci-deployer');
    const dash = await waitForReady(watched.name, 'dashboard-reader');
    expect(ci.spec.permissions).toEqual(['deploy']);
    expect(dash.spec.permissions).toEqual(['read']);
    const s = (await getSecret(watched.name, 'dashboard-reader-credentials'))!;
    expect(s.metadata?.labels?.team).toBe('data-platform');
    expect(s.metadata?.annotations?.['secrets.example.com/sync-to']).toBe('vault://kv/airflow/dashboard');
    expect(credentialsOf(s).audience).toBe('https://airflow-prod.example.com');
    expect(dash.spec.rotation).toEqual({ every: '2160h', gracePeriod: '24h' });
  });
});

const WORKER_EXAMPLE = join(ROOT, 'manifests', 'examples', 'long-running-worker.yaml');
const JOB_EXAMPLE = join(ROOT, 'manifests', 'examples', 'job-fetch-token.yaml');

interface Script { stdout: () => string; stderr: () => string; exited: Promise<number>; stop: () => void }

/** Runs a manifest's shell script in a real /bin/sh with only `env` (and PATH) in its environment. */
function runScript(script: string, env: Record<string, string>): Script {
  const child = spawn('/bin/sh', ['-c', script], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  return { stdout: () => stdout, stderr: () => stderr, exited, stop: () => { child.kill('SIGTERM'); } };
}

describe('the long-running example, which reads the key from a Secret volume', () => {
  let server: RunningProcess & { url: string };
  let work: string;
  const worker = () => parseYaml(readFileSync(WORKER_EXAMPLE, 'utf8')) as V1Deployment;

  beforeAll(async () => {
    server = await startTokenServer({ kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, args: ['--namespaces', watched.name] });
    work = mkdtempSync(join(tmpdir(), 'long-running-'));
  });

  afterAll(async () => {
    await server?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('is accepted by the API server (dry run), hardened, and mounts the Secret ci-deployer whole, read-only, with no envFrom', async () => {
    const r = await kubectl(['apply', '--dry-run=server', '-n', watched.name, '-f', WORKER_EXAMPLE, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const pod = (JSON.parse(r.stdout) as V1Deployment).spec?.template.spec;
    // 0440 in the YAML: kubectl reads it as octal, so the files are readable by the fsGroup only.
    expect(pod?.volumes).toEqual([{ name: 'apikey', secret: { secretName: 'ci-deployer', defaultMode: 0o440 } },
      { name: 'apikey-operator-ca', configMap: { name: 'apikey-operator-ca.crt', defaultMode: 0o644 } }]);
    expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, fsGroup: 101, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod?.automountServiceAccountToken).toBe(false);
    const c = pod?.containers[0];
    expect(c?.envFrom).toBeUndefined();
    // A subPath mount is never updated by the kubelet: the whole volume is mounted.
    expect(c?.volumeMounts).toEqual([{ name: 'apikey', mountPath: '/var/run/secrets/apikey', readOnly: true },
      { name: 'apikey-operator-ca', mountPath: '/etc/apikey-operator-ca', readOnly: true }]);
    // The server is verified with the operator's CA bundle, never with a check turned off.
    expect(c?.env?.find((e) => e.name === 'CA_FILE')?.value).toBe('/etc/apikey-operator-ca/ca.crt');
    expect(c?.args?.[0]).toContain('--cacert "$CA_FILE"');
    expect(c?.args?.[0]).not.toMatch(/--insecure|-k\b/);
    expect(c?.env?.find((e) => e.name === 'CREDENTIALS_DIR')?.value).toBe('/var/run/secrets/apikey');
    expect(c?.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  });

  it('keeps getting tokens across a rotation and past its grace period, where the Job\'s envFrom environment is refused', async () => {
    await createDeployment(watched.name, 'worker', { audiences: ['https://worker.example.test'] });
    await createApiKey(watched.name, 'worker', { deploymentRef: { name: 'worker' }, rotation: { gracePeriod: '3s' } });
    await waitForReady(watched.name, 'worker');
    const tokenUrl = `${server.url}/oauth/token`;
    const request = (c: Credentials) => fetch(tokenUrl, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: c.keyId, client_secret: c.secret, audience: c.audience, grant_type: 'client_credentials' }),
    }).then((res) => res.status);
    // The Secret's TOKEN_URL is the in-cluster Service; no Pod runs here, so the local token server stands in.
    const volumeOf = (c: Credentials) => ({ API_KEY_ID: c.keyId, API_KEY_SECRET: c.secret, AUDIENCE: c.audience, TOKEN_URL: tokenUrl });
    const before = credentialsOf((await getSecret(watched.name, 'worker'))!);
    await waitFor('the token server to know the key', async () => (await request(before)) === 200, 10_000, 100);

    const volume = join(work, 'apikey');
    projectSecret(volume, volumeOf(before));
    const container = worker().spec!.template.spec!.containers[0]!;
    expect(container.command).toEqual(['/bin/sh', '-c']);
    const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
    const run = runScript(container.args![0]!, { ...env, CREDENTIALS_DIR: volume, TOKEN_REFRESH_SECONDS: '1', TOKEN_RETRY_SECONDS: '1' });
    const fetched = () => run.stdout().split('\n').filter((l) => /^fetched an access token for key ak_\w+, valid for \d+s; next in 1s$/.test(l)).length;
    try {
      await waitFor('the worker\'s first tokens', () => Promise.resolve(fetched() >= 2), 20_000, 100);
      expect(run.stdout()).toContain(`fetched an access token for key ${before.keyId}, valid for 86400s; next in 1s`);

      const r = await kubectl(['annotate', 'apikeys.apikeys.dev', 'worker', '-n', watched.name, `apikeys.dev/rotate=${Date.now()}`]);
      expect(r.code, r.stderr).toBe(0);
      const after = await waitFor('the rotated secret in the Secret', async () => {
        const c = credentialsOf((await getSecret(watched.name, 'worker'))!);
        return c.secret !== before.secret ? c : undefined;
      }, 30_000, 100);
      await waitFor('the token server to know the new secret', async () => (await request(after)) === 200, 10_000, 100);
      // The kubelet swaps the files at its next sync of the pod; until then the old secret's grace holds.
      projectSecret(volume, volumeOf(after));
      await waitFor('the end of the old secret\'s grace period', async () => (await request(before)) === 401, 30_000, 200);
      const sinceGraceEnded = fetched();
      await waitFor('the worker\'s tokens after the grace period', () => Promise.resolve(fetched() >= sinceGraceEnded + 2), 20_000, 100);
      expect(run.stdout()).toContain(`fetched an access token for key ${after.keyId}`);
      expect(run.stderr()).toBe('');

      // A container that took the key from envFrom still holds the old secret: refused now.
      const job = parseYaml(readFileSync(JOB_EXAMPLE, 'utf8')) as V1Job;
      const jobContainer = job.spec!.template.spec!.containers[0]!;
      const stale = runScript(jobContainer.args![0]!, {
        // The container's own env (CA_FILE; curl ignores it for this plain-HTTP stand-in).
        ...Object.fromEntries((jobContainer.env ?? []).map((e) => [e.name, e.value ?? ''])),
        API_KEY_ID: before.keyId, API_KEY_SECRET: before.secret, AUDIENCE: before.audience, TOKEN_URL: tokenUrl,
      });
      expect(await stale.exited).toBe(1);
      expect(stale.stderr()).toMatch(/token request to .* failed: .*invalid_client/);
      for (const out of [run.stdout(), run.stderr(), stale.stdout(), stale.stderr()]) {
        for (const secret of [before.secret, after.secret]) expect(out).not.toContain(secret);
      }
    } finally {
      run.stop();
      await run.exited;
    }
  }, 120_000);
});

describe('in a pod', () => {
  it('the controller runs from the ServiceAccount files and KUBERNETES_SERVICE_* alone, in the ServiceAccount\'s namespace', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pod-root-'));
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    try {
      // What the kubelet mounts: the token, the cluster CA, the namespace.
      const kc = new KubeConfig();
      kc.loadFromFile(identity.controllerKubeconfig);
      writeFileSync(join(sa, 'token'), kc.getCurrentUser()!.token!);
      writeFileSync(join(sa, 'ca.crt'), Buffer.from(kc.getCurrentCluster()!.caData!, 'base64'));
      writeFileSync(join(sa, 'namespace'), identity.namespace);
      await controller.stop();
      const server = new URL(clusterState().server);
      const inPod = await startController({
        kubeconfig: '', operatorNamespace: '', raw: true,
        args: ['--namespaces', watched.name, '--leader-elect-lease-duration', '3s'],
        env: { KUBECONFIG: undefined, APIKEY_OPERATOR_POD_ROOT: root, KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port },
      });
      controller = inPod;
      await createApiKey(watched.name, 'from-pod', { deploymentRef: { name: 'dep' } });
      await waitForReady(watched.name, 'from-pod', 60_000);
      const lease = await adminClient().get<{ spec: { holderIdentity: string } }>(
        `/apis/coordination.k8s.io/v1/namespaces/${identity.namespace}/leases/apikey-operator-controller`);
      expect(lease.spec.holderIdentity).toBeTruthy();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 120_000);
});
