/**
 * The chart, end to end: `helm install` creates the ServiceAccounts and RBAC;
 * the controller and the token server then run as processes with exactly the
 * arguments of the chart's containers and tokens of the chart's
 * ServiceAccounts. Chart values go in, an ApiKey goes in, a token comes out:
 * the chart's RBAC is enough. TLS is the chart's default: the controller
 * makes the serving certificate and the CA bundle ConfigMap with the chart's
 * rights; the test plays the kubelet (the Secret's files where the chart
 * mounts them), and the token is fetched over HTTPS by a client that trusts
 * only the ConfigMap's bundle and checks the Service's name.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from './cluster/controlplane.ts';
import { CHART_DIR } from '../scripts/render-manifests.ts';
import { createNamespace, kubectl, serviceAccountKubeconfig, uniqueName, type TestNamespace } from './support/cluster.ts';
import { WITHOUT_CRDS, helm } from './support/helm.ts';
import { MAIN, startProcess, waitForHttp, type RunningProcess } from './support/processes.ts';
import { createApiKey, createDeployment, credentialsOf, getSecret, waitForReady } from './support/resources.ts';
import { waitFor } from './support/wait.ts';
import { Agent, fetch as undiciFetch } from 'undici';
import type { SecretObject } from '../src/api/index.ts';

const AUDIENCE = 'https://chart-e2e.example.test';
let opNs: TestNamespace;
let appNs: TestNamespace;
const release = uniqueName('e2e');
const tmp = mkdtempSync(join(tmpdir(), 'chart-e2e-'));
const procs: RunningProcess[] = [];

interface PodSpec { serviceAccountName: string; containers: { name: string; args: string[] }[] }

beforeAll(async () => {
  opNs = await createNamespace('chart-op');
  appNs = await createNamespace('chart-app');
  const install = await helm(['install', release, CHART_DIR, '--namespace', opNs.name], {
    ...WITHOUT_CRDS, tokenServer: { mode: 'deployment', extraArgs: ['--user-token-ttl=30m'] }, signing: { algorithm: 'EdDSA' },
    audiences: [AUDIENCE], watchNamespaces: [appNs.name],
    // Flags the chart has no value for, which the programs must accept.
    controller: { extraArgs: ['--resync=2h', '--leader-elect-lease-duration=20s', '--leader-elect-renew-deadline=15s'] },
  });
  expect(install.code, install.stderr).toBe(0);
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await helm(['uninstall', release, '--namespace', opNs.name]);
  await appNs?.cleanup();
  await opNs?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

async function podSpec(component: string): Promise<PodSpec> {
  const r = await kubectl(['get', 'deployments.apps', '-n', opNs.name, '-o', 'json']);
  const list = JSON.parse(r.stdout) as { items: { metadata: { name: string }; spec: { template: { spec: PodSpec } } }[] };
  const d = list.items.find((i) => i.metadata.name.endsWith(`-${component}`));
  if (!d) throw new Error(`no ${component} Deployment in ${list.items.map((i) => i.metadata.name).join(', ')}`);
  return d.spec.template.spec;
}

it('runs with the chart\'s arguments and ServiceAccounts, and turns an ApiKey into a token signed as configured', async () => {
  const ctl = await podSpec('controller');
  const ts = await podSpec('token-server');
  const ctlArgs = ctl.containers.find((c) => c.name === 'controller')!.args;
  const tsArgs = ts.containers.find((c) => c.name === 'token-server')!.args;
  expect(ctlArgs).toContain('--signing-algorithm=EdDSA');
  expect(ctlArgs.slice(-3)).toEqual(['--resync=2h', '--leader-elect-lease-duration=20s', '--leader-elect-renew-deadline=15s']);
  expect(tsArgs.at(-1)).toBe('--user-token-ttl=30m');
  expect(tsArgs).toContain(`--audiences=${AUDIENCE}`);
  expect(ctl.serviceAccountName).not.toBe(ts.serviceAccountName);

  // Only the kubeconfig (the pod's ServiceAccount token) and the local ports differ from the pods.
  const health = await freePort();
  const controller = startProcess('controller', [MAIN, ...ctlArgs,
    '--kubeconfig', await serviceAccountKubeconfig(opNs.name, ctl.serviceAccountName, tmp), `--health-port=${health}`]);
  procs.push(controller);
  const port = await freePort();
  const metricsPort = await freePort();
  // The kubelet's part: the serving Secret the controller makes, as files, where the token server reads them.
  const tlsDir = join(tmp, 'tls');
  mkdirSync(tlsDir);
  const tlsSecret = ctlArgs.find((a) => a.startsWith('--serving-cert-secret='))!.slice('--serving-cert-secret='.length);
  const served = await waitFor('the serving certificate Secret', () => kubectl(['get', 'secret', tlsSecret, '-n', opNs.name, '-o', 'json'])
    .then((r) => (r.code === 0 ? JSON.parse(r.stdout) as SecretObject : undefined)), 60_000, 200);
  for (const k of ['tls.crt', 'tls.key']) writeFileSync(join(tlsDir, k), Buffer.from(served.data![k]!, 'base64'), { mode: 0o600 });
  const localTls = (a: string) => a.replace('=/etc/apikey-operator/tls/', `=${tlsDir}/`);
  const tokenServer = startProcess('token-server', [MAIN, ...tsArgs.map(localTls),
    '--kubeconfig', await serviceAccountKubeconfig(opNs.name, ts.serviceAccountName, tmp), `--port=${port}`,
    `--metrics-port=${metricsPort}`, '--host=127.0.0.1']);
  procs.push(tokenServer);
  await waitForHttp(`http://127.0.0.1:${health}/readyz`, controller);
  // A client that trusts only the bundle the controller published in the app's namespace, and checks the Service's name.
  const bundle = await waitFor('the CA bundle ConfigMap', () => kubectl(['get', 'configmap', 'apikey-operator-ca.crt', '-n', appNs.name, '-o', 'jsonpath={.data.ca\\.crt}'])
    .then((r) => (r.code === 0 && r.stdout.includes('BEGIN CERTIFICATE') ? r.stdout : undefined)), 60_000, 200);
  const chartUrl = new URL(ctlArgs.find((a) => a.startsWith('--token-url='))!.slice('--token-url='.length));
  expect(chartUrl.protocol).toBe('https:');
  const agent = new Agent({ connect: { ca: bundle, servername: chartUrl.hostname } });
  const local = (path: string) => `https://127.0.0.1:${port}${path}`;
  await waitFor('the token server over TLS', async () =>
    (await undiciFetch(local('/readyz'), { dispatcher: agent }).catch(() => undefined))?.status === 200, 60_000, 200);

  await createDeployment(appNs.name, 'app');
  await createApiKey(appNs.name, 'key', { deploymentRef: { name: 'app' } });
  await waitForReady(appNs.name, 'key');
  const creds = credentialsOf((await getSecret(appNs.name, 'key'))!);
  const chartTokenUrl = ctlArgs.find((a) => a.startsWith('--token-url='))!.slice('--token-url='.length);
  expect(creds.tokenUrl).toBe(chartTokenUrl);
  expect(creds.audience).toBe(AUDIENCE);

  // Ready in the apiserver reaches the token server through its watch a moment later.
  const res = await waitFor('a token', async () => {
    const r = await undiciFetch(local('/oauth/token'), { dispatcher: agent,
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: creds.keyId, client_secret: creds.secret, audience: creds.audience, grant_type: 'client_credentials' }),
    });
    return r.status === 200 ? r : undefined;
  }, 10_000, 100);
  expect(res.status).toBe(200);
  const { access_token: token } = await res.json() as { access_token: string };
  expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
  const jwks = await (await undiciFetch(local('/.well-known/jwks.json'), { dispatcher: agent })).json() as Parameters<typeof createLocalJWKSet>[0];
  const issuer = tsArgs.find((a) => a.startsWith('--issuer='))!.slice('--issuer='.length);
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer, audience: AUDIENCE, typ: 'at+jwt' });
  expect(payload).toMatchObject({ sub: creds.keyId, deployment: `${appNs.name}/app`, scope: 'deploy' });
  // The chart gives /metrics a port of its own: the token port does not serve it.
  expect(tsArgs).toContain('--metrics-port=9090');
  expect((await undiciFetch(local('/metrics'), { dispatcher: agent })).status).toBe(404);
  expect(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).toMatch(/^apikey_operator_tokens_issued_total\{grant_type="client_credentials"\} 1$/m);
}, 120_000);
