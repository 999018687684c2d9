/**
 * TLS by default, without cert-manager: on the real control plane the real
 * controller (the chart's identity and RBAC) makes its CA, the token server's
 * serving certificate and the CA bundle ConfigMap of every namespace (also
 * one created later, and again when one is deleted or edited), and renews the
 * certificate. The real token server serves it from files kept in step with
 * the Secret as the kubelet keeps a Secret volume, reloads the renewed one
 * without a restart, and clients that trust only the ConfigMap's bundle
 * verify it: Node's TLS, openid-client (discovery and client credentials)
 * and Python's requests-oauthlib, none told to skip a check.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import * as oidc from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { SecretObject } from '../src/api/index.ts';
import { issueCertificate, newKeyPem } from '../src/shared/x509.ts';
import { projectSecret } from './support/kubelet.ts';
import { ROOT } from './support/paths.ts';
import { createNamespace, kubectl, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { freePort } from './cluster/controlplane.ts';
import { recordSecret, startController, startTokenServer, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import {
  createApiKey, createDeployment, credentialsOf, getOrUndefined, getSecret, uniqueAudience, waitForReady, type Credentials,
} from './support/resources.ts';
import { waitFor } from './support/wait.ts';

const exec = promisify(execFile);
const CONFIGMAP = 'apikey-operator-ca.crt';
const AUDIENCE = uniqueAudience('tls-default');
/** Short enough to see a renewal in the test: renewed when a third (15 s) is left. */
const VALIDITY_S = 45;

interface ConfigMap { metadata: { resourceVersion?: string; labels?: Record<string, string> }; data?: Record<string, string> }

let ns: TestNamespace;
let later: TestNamespace | undefined;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: TokenServerProcess;
let dir: string;
let tlsSecretName: string;
let key: Credentials;
let stopKubelet = false;
let kubelet: Promise<void> | undefined;

const configMapPath = (namespace: string) => `/api/v1/namespaces/${namespace}/configmaps/${CONFIGMAP}`;
const bundleIn = async (namespace: string) => (await getOrUndefined<ConfigMap>(configMapPath(namespace)))?.data?.['ca.crt'];
const secretIn = (name: string) => getSecret(identity.namespace, name);
const decoded = (s: SecretObject | undefined, k: string) => Buffer.from(s?.data?.[k] ?? '', 'base64').toString('utf8');

/** Keeps `dir/tls` in step with the serving Secret, as the kubelet keeps the token server's volume. */
async function runKubelet(): Promise<void> {
  let seen = '';
  while (!stopKubelet) {
    const s = await secretIn(tlsSecretName).catch(() => undefined);
    const crt = decoded(s, 'tls.crt');
    if (crt && crt !== seen) {
      projectSecret(join(dir, 'tls'), { 'tls.crt': crt, 'tls.key': decoded(s, 'tls.key') });
      seen = crt;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** The certificate the server presents, verified against `ca` only (throws when it does not verify). */
function presented(ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: server.port!, ca, servername: 'localhost' }, () => {
      const cert = socket.getPeerX509Certificate()!;
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'serving-cert-'));
  ns = await createNamespace('tls');
  identity = await installOperatorIdentity();
  // The chart's name for it: its RBAC lets the controller touch that Secret and no other.
  tlsSecretName = `${identity.release}-apikey-operator-token-tls`;
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace,
    args: ['--serving-cert-secret', tlsSecretName, '--serving-cert-dns-names', `localhost,127.0.0.1,token.${identity.namespace}.svc`,
      '--serving-cert-validity', `${VALIDITY_S}s`, '--serving-ca-validity', '3h'],
  });
  kubelet = runKubelet();
  // The token server starts before its certificate exists, and waits for it (an optional Secret volume).
  // Its own port and issuer (the later flags win): clients reach it as https://localhost, a name of the certificate.
  const port = await freePort();
  const url = `https://localhost:${port}`;
  server = await startTokenServer({
    kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, waitReady: false,
    args: ['--port', String(port), '--issuer', url, '--tls-cert-file', join(dir, 'tls', 'tls.crt'), '--tls-private-key-file', join(dir, 'tls', 'tls.key')],
  });
  Object.assign(server, { url, port });
  await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
  await createApiKey(ns.name, 'ci', { deploymentRef: { name: 'airflow' }, permissions: ['deploy'] });
  await waitForReady(ns.name, 'ci');
  key = credentialsOf((await getSecret(ns.name, 'ci'))!);
  recordSecret(key.secret);
}, 180_000);

afterAll(async () => {
  stopKubelet = true;
  await kubelet;
  await Promise.all([server?.stop(), controller?.stop()]);
  await identity?.cleanup();
  for (const n of [ns, later]) await n?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the operator-made serving certificate', () => {
  it('has a CA Secret, a kubernetes.io/tls Secret it signed for the Service names, and the same bundle in each namespace\'s ConfigMap', async () => {
    const bundle = await waitFor('the CA bundle ConfigMap', () => bundleIn(ns.name), 60_000, 200);
    const ca = await secretIn('apikey-operator-ca');
    expect(decoded(ca, 'ca.crt')).toBe(bundle);
    const tls = (await secretIn(tlsSecretName))!;
    expect(tls.type).toBe('kubernetes.io/tls');
    expect(decoded(tls, 'ca.crt')).toBe(bundle);
    const cert = new X509Certificate(decoded(tls, 'tls.crt'));
    expect(cert.verify(new X509Certificate(bundle).publicKey)).toBe(true);
    expect(cert.subjectAltName).toBe(`DNS:localhost, IP Address:127.0.0.1, DNS:token.${identity.namespace}.svc`);
    expect(new X509Certificate(bundle).ca).toBe(true);
    // The bundle ConfigMap holds no key.
    expect(bundle).not.toContain('PRIVATE KEY');
    const cm = (await getOrUndefined<ConfigMap>(configMapPath(ns.name)))!;
    expect(cm.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('apikey-operator');
  });

  it('puts the bundle into a namespace created later, and re-creates or repairs a ConfigMap deleted or edited by hand', async () => {
    const bundle = (await bundleIn(ns.name))!;
    later = await createNamespace('tls-later');
    expect(await waitFor('the ConfigMap in the new namespace', () => bundleIn(later!.name), 30_000, 200)).toBe(bundle);
    expect((await kubectl(['delete', 'configmap', CONFIGMAP, '-n', later.name])).code).toBe(0);
    expect(await waitFor('the ConfigMap re-created', () => bundleIn(later!.name), 30_000, 200)).toBe(bundle);
    const r = await kubectl(['patch', 'configmap', CONFIGMAP, '-n', ns.name, '--type', 'merge', '-p', JSON.stringify({ data: { 'ca.crt': 'tampered' } })]);
    expect(r.code, r.stderr).toBe(0);
    await waitFor('the ConfigMap repaired', async () => (await bundleIn(ns.name)) === bundle, 30_000, 200);
  });

  it('is served by the token server; a client trusting only the ConfigMap\'s bundle verifies it, one trusting nothing else refuses it', async () => {
    const bundle = await waitFor('the CA bundle ConfigMap', () => bundleIn(ns.name), 60_000, 200);
    const agent = new Agent({ connect: { ca: bundle } });
    await waitFor('the token server over TLS', async () => {
      const r = await undiciFetch(`${server.url}/readyz`, { dispatcher: agent }).catch(() => undefined);
      return r?.status === 200;
    }, 60_000, 200);
    const served = await presented(bundle);
    expect(served.fingerprint256).toBe(new X509Certificate(decoded(await secretIn(tlsSecretName), 'tls.crt')).fingerprint256);
    // The system's CAs alone do not know the operator's CA.
    await expect(undiciFetch(`${server.url}/readyz`)).rejects.toThrow();
  });

  it('lets openid-client discover the server and fetch a token with client credentials, its HTTPS checks on', async () => {
    const bundle = (await bundleIn(ns.name))!;
    const agent = new Agent({ connect: { ca: bundle } });
    // Only the trust anchor is given (as NODE_EXTRA_CA_CERTS would): no allowInsecureRequests.
    const customFetch = ((url: string, init: Parameters<typeof undiciFetch>[1]) => undiciFetch(url, { ...init, dispatcher: agent })) as unknown as typeof fetch;
    const config = await oidc.discovery(new URL(server.url), key.keyId, undefined, oidc.ClientSecretPost(key.secret), { [oidc.customFetch]: customFetch });
    const tokens = await oidc.clientCredentialsGrant(config, { audience: AUDIENCE });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    recordSecret(tokens.access_token);
  });

  it('lets requests-oauthlib fetch a token with the bundle as its verify=, with no OAUTHLIB_INSECURE_TRANSPORT', async () => {
    const python = await pythonWithRequestsOauthlib();
    const caFile = join(dir, 'bundle.crt');
    writeFileSync(caFile, (await bundleIn(ns.name))!);
    const script = [
      'import json, os, sys',
      'from oauthlib.oauth2 import BackendApplicationClient',
      'from requests_oauthlib import OAuth2Session',
      'assert "OAUTHLIB_INSECURE_TRANSPORT" not in os.environ',
      'client_id, client_secret = sys.stdin.read().split()',
      'session = OAuth2Session(client=BackendApplicationClient(client_id=client_id))',
      'token = session.fetch_token(token_url=sys.argv[1], client_id=client_id, client_secret=client_secret, audience=sys.argv[2], verify=sys.argv[3])',
      'print(json.dumps({"token_type": token["token_type"], "expires_in": token["expires_in"]}))',
    ].join('\n');
    const run = (url: string) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(python, ['-c', script, url, AUDIENCE, caFile], { env: { PATH: process.env.PATH } }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
      child.stdin!.end(`${key.keyId} ${key.secret}`);
    });
    const ok = await run(`${server.url}/oauth/token`);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ token_type: 'Bearer', expires_in: 86400 });
    // The same client refuses a plain-HTTP token endpoint on its own (RFC 6749 3.2).
    const plain = await run(`http://127.0.0.1:${server.port}/oauth/token`);
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/InsecureTransportError/);
  }, 240_000);

  it('lets the Job example\'s script (curl --cacert with the mounted bundle) fetch a token over TLS, and fail without the bundle', async () => {
    const job = parseYaml(readFileSync(join(ROOT, 'manifests', 'examples', 'job-fetch-token.yaml'), 'utf8')) as
      { spec: { template: { spec: { containers: { args: string[]; env: { name: string; value: string }[] }[] } } } };
    const container = job.spec.template.spec.containers[0]!;
    expect(container.env).toEqual([{ name: 'CA_FILE', value: '/etc/apikey-operator-ca/ca.crt' }]);
    // Where the ConfigMap volume would be.
    const caFile = join(dir, 'job-ca.crt');
    writeFileSync(caFile, (await bundleIn(ns.name))!);
    const run = (ca: string) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('/bin/sh', ['-c', container.args[0]!], {
        env: { PATH: process.env.PATH, API_KEY_ID: key.keyId, API_KEY_SECRET: key.secret, AUDIENCE, TOKEN_URL: `${server.url}/oauth/token`, CA_FILE: ca },
      }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }));
    });
    const ok = await run(caFile);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe(`fetched an access token for key ${key.keyId}, valid for 86400s\n`);
    // Another CA's bundle: curl refuses the server (no certificate check is ever off).
    const other = join(dir, 'other-ca.crt');
    writeFileSync(other, issueCertificate({ commonName: 'someone-else', notBefore: new Date(), notAfter: new Date(Date.now() + 3600_000), ca: true }, newKeyPem()));
    const refused = await run(other);
    expect(refused.code).toBe(1);
    expect(refused.stdout).not.toContain('fetched');
  }, 60_000);

  it('is renewed before it expires and the token server serves the new one without a restart; the bundle still verifies it', async () => {
    const bundle = (await bundleIn(ns.name))!;
    const first = new X509Certificate(decoded(await secretIn(tlsSecretName), 'tls.crt'));
    const pid = server.pid;
    const renewed = await waitFor('a renewed serving certificate', async () => {
      const c = new X509Certificate(decoded(await secretIn(tlsSecretName), 'tls.crt'));
      return c.fingerprint256 !== first.fingerprint256 ? c : undefined;
    }, (VALIDITY_S + 15) * 1000, 500);
    // Before the first one expired.
    expect(Date.now()).toBeLessThan(Date.parse(first.validTo));
    await waitFor('the token server serving the renewed certificate', async () =>
      (await presented(bundle)).fingerprint256 === renewed.fingerprint256, 20_000, 200);
    expect(server.pid).toBe(pid);
    expect(server.isRunning()).toBe(true);
    expect(await bundleIn(ns.name)).toBe(bundle);
  }, 120_000);
});

/** A Python with requests-oauthlib, in a virtualenv under the cache directory (made once, pip from the package index). */
async function pythonWithRequestsOauthlib(): Promise<string> {
  const venv = join(homedir(), '.cache', 'apikey-operator', 'python-oauth-clients');
  const python = join(venv, 'bin', 'python');
  const has = () => exec(python, ['-c', 'import requests_oauthlib']).then(() => true, () => false);
  if (!await has()) {
    await exec('python3', ['-m', 'venv', venv]);
    await exec(join(venv, 'bin', 'pip'), ['install', '--quiet', 'requests-oauthlib'], { timeout: 180_000 });
  }
  return python;
}


