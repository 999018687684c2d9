/**
 * The token endpoint over TLS, on the real control plane: a client secret
 * travels in every token request. The server presents a certificate of a
 * test CA, the seed's curl works with --cacert, TLS 1.1 is refused, and a
 * certificate replaced on disk (as cert-manager renews it) is served without
 * a restart.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { promisify } from 'node:util';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './cluster/controlplane.ts';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { MAIN, startController, startProcess, type RunningProcess } from './support/processes.ts';
import { createApiKey, createDeployment, credentialsOf, getSecret, uniqueAudience, waitForReady } from './support/resources.ts';
import { makeTestCa } from './support/test-ca.ts';
import { waitFor } from './support/wait.ts';

const exec = promisify(execFile);

let dir: string;
let ns: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: RunningProcess;
let url: string;
let agent: Agent;
const AUDIENCE = uniqueAudience('tls');

/** The certificate the server presents to a new connection. */
function presented(opts: { maxVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' } = {}): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(url).port), ca: readFileSync(join(dir, 'ca.crt')),
      servername: 'localhost', maxVersion: opts.maxVersion, minVersion: opts.maxVersion === 'TLSv1.1' ? 'TLSv1' : undefined }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

const fingerprintOf = (file: string) => new X509Certificate(readFileSync(join(dir, file))).fingerprint256;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'token-tls-'));
  const ca = makeTestCa(dir, 'apikey-operator-tls-test-ca');
  ca.serving('first');
  ca.serving('second');
  // Where a mounted TLS Secret would be.
  copyFileSync(join(dir, 'first.crt'), join(dir, 'tls.crt'));
  copyFileSync(join(dir, 'first.key'), join(dir, 'tls.key'));
  agent = new Agent({ connect: { ca: readFileSync(join(dir, 'ca.crt')) } });

  ns = await createNamespace('tls');
  identity = await installOperatorIdentity();
  const port = await freePort();
  url = `https://127.0.0.1:${port}`;
  server = startProcess('token-server-tls', [
    MAIN, 'token-server', '--kubeconfig', identity.tokenServerKubeconfig, '--operator-namespace', identity.namespace,
    '--port', String(port), '--metrics-port', '0', '--host', '127.0.0.1', '--issuer', url,
    '--tls-cert-file', join(dir, 'tls.crt'), '--tls-private-key-file', join(dir, 'tls.key'),
  ]);
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, args: ['--token-url', `${url}/oauth/token`],
  });
  await waitFor('the token server ready over TLS', async () => {
    if (!server.isRunning()) throw new Error(`the token server exited:\n${server.logs().slice(-3000)}`);
    try {
      return (await undiciFetch(`${url}/readyz`, { dispatcher: agent })).status === 200;
    } catch {
      return false;
    }
  }, 60_000, 100);
});

afterAll(async () => {
  await server?.stop();
  await controller?.stop();
  await agent?.close();
  await identity?.cleanup();
  await ns?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the token endpoint over TLS', () => {
  it('gives a token to the seed\'s curl with --cacert, and the token verifies against the JWKS fetched over TLS', async () => {
    await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
    await createApiKey(ns.name, 'ci', { deploymentRef: { name: 'airflow' } });
    await waitForReady(ns.name, 'ci');
    const c = credentialsOf((await getSecret(ns.name, 'ci'))!);
    expect(c.tokenUrl).toBe(`${url}/oauth/token`);
    const data = JSON.stringify({ client_id: c.keyId, client_secret: c.secret, audience: c.audience, grant_type: 'client_credentials' });
    const script = `curl -s --fail-with-body --cacert "$CA" -X POST "$URL" -H 'content-type: application/json' -d '${data}' | jq -r .access_token`;
    const token = await waitFor('a token through curl', async () => {
      const { stdout } = await exec('sh', ['-c', script], { env: { PATH: process.env.PATH, URL: c.tokenUrl, CA: join(dir, 'ca.crt') } })
        .catch(() => ({ stdout: '' }));
      return /^eyJ/.test(stdout.trim()) ? stdout.trim() : undefined;
    }, 15_000, 100);
    expect(decodeJwt(token).sub).toBe(c.keyId);
    const jwks = await (await undiciFetch(`${url}/.well-known/jwks.json`, { dispatcher: agent })).json() as JSONWebKeySet;
    await jwtVerify(token, createLocalJWKSet(jwks), { issuer: url, audience: AUDIENCE, typ: 'at+jwt' });
    // Plain curl without the CA refuses the server: it is really TLS with the test CA's certificate.
    const untrusted = await exec('curl', ['-s', '-o', '/dev/null', `${url}/healthz`]).then(() => 0, (e: { code: number }) => e.code);
    expect(untrusted).not.toBe(0);
  });

  it('presents its certificate for TLS 1.2 and 1.3, and refuses TLS 1.1', async () => {
    expect((await presented()).fingerprint256).toBe(fingerprintOf('first.crt'));
    expect((await presented({ maxVersion: 'TLSv1.2' })).fingerprint256).toBe(fingerprintOf('first.crt'));
    await expect(presented({ maxVersion: 'TLSv1.1' })).rejects.toThrow();
  });

  it('serves a certificate replaced on disk, without a restart, and keeps the old one while a replacement does not load', async () => {
    const pid = server.pid;
    // A broken key first (a renewal half written): the server keeps serving the first certificate.
    copyFileSync(join(dir, 'second.crt'), join(dir, 'tls.crt.new'));
    renameSync(join(dir, 'tls.crt.new'), join(dir, 'tls.crt'));
    await new Promise((r) => setTimeout(r, 2500));
    expect((await presented()).fingerprint256).toBe(fingerprintOf('first.crt'));
    expect(server.logs()).toContain('still serving the previous one');
    // Then the matching key: the second certificate is served.
    copyFileSync(join(dir, 'second.key'), join(dir, 'tls.key.new'));
    renameSync(join(dir, 'tls.key.new'), join(dir, 'tls.key'));
    await waitFor('the second certificate served', async () => (await presented()).fingerprint256 === fingerprintOf('second.crt'), 10_000, 200);
    expect(server.pid).toBe(pid);
    expect(server.isRunning()).toBe(true);
    expect((await undiciFetch(`${url}/healthz`, { dispatcher: agent })).status).toBe(200);
  });

  it('refuses to start with a certificate and no key, or a key that does not match, saying which files', async () => {
    const half = await exec(process.execPath, [MAIN, 'token-server', '--tls-cert-file', join(dir, 'first.crt')]).then(
      () => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('--tls-cert-file and --tls-private-key-file go together');
    const mismatched = await exec(process.execPath, [MAIN, 'token-server', '--tls-cert-file', join(dir, 'first.crt'),
      '--tls-private-key-file', join(dir, 'second.key')]).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    expect(mismatched.code).toBe(2);
    expect(mismatched.stderr).toContain('do not make a usable pair');
    expect(mismatched.stderr).not.toContain('PRIVATE KEY');
  });
});
