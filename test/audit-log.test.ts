/**
 * The audit log against the real token server process, with the chart's
 * identities on the real control plane: every grant (client credentials,
 * token exchange of a Kubernetes identity, federated exchange of a GitHub
 * Actions-like token) issues and refuses, and the log then holds exactly one
 * record per issued jti and one per refusal, with its reason, the client
 * address through the trusted proxy, and nothing secret. A small
 * --audit-log-maxsize makes it rotate; the files are written into the run's
 * log directory, where the final log scan reads them too.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { generateSecret } from '../src/keys/format.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, serviceAccountToken, type TestNamespace } from './support/cluster.ts';
import { makeIssuerCa, TestOidcIssuer, type IssuerCa } from './support/federation-issuer.ts';
import { bindTokenRequester, installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { logDir, recordSecret, startController, startTokenServer, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import {
  createApiKey, createDeployment, createFederatedCredential, credentialsOf, getSecret, uniqueAudience, waitForReady, type Credentials,
} from './support/resources.ts';
import { form, json, post, postFrom, scrapeMetrics, type Answer } from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT = 'repo:acme/airflow-dags:ref:refs/heads/main';
const AUDIENCE = uniqueAudience('audit');
const MAX_SIZE = 8 * 1024;

let ca: IssuerCa;
let github: TestOidcIssuer;
let ns: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: TokenServerProcess;
let key: Credentials;
let auditBase: string;
let deployerToken: string;
/** Every jti a request of this file received. */
const jtis: string[] = [];
/** Every credential and token this file handled: none may be in the audit log. */
const secrets: string[] = [];

interface AuditRecord {
  apiVersion: string; kind: string; time: string; outcome: string; status: number; error?: string; reason?: string; detail?: string;
  grantType?: string; keyId?: string; subject?: string; clientId?: string; deployment?: string; federatedCredential?: string;
  federatedIssuer?: string; audience?: string[]; scope?: string; jti?: string; expiresAt?: string; clientAddress: string; userAgent?: string;
}

function keep(s: string): string {
  secrets.push(s);
  recordSecret(s);
  return s;
}

/** Remembers the jti of a 200 (and the token, for the scan); returns the answer. */
function tally(r: Answer): Answer {
  if (r.status === 200) {
    const token = keep(r.body.access_token as string);
    jtis.push(decodeJwt(token).jti!);
  }
  return r;
}

const ua = (name: string) => ({ 'user-agent': `audit-test/${name}` });
const tokenUrl = () => `${server.url}/oauth/token`;
const clientCredentials = (extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  post(tokenUrl(), json({ grant_type: 'client_credentials', client_id: key.keyId, client_secret: key.secret, audience: AUDIENCE, ...extra }, headers))
    .then(tally);
const exchange = (subjectToken: string, headers: Record<string, string>, extra: Record<string, string> = {}) =>
  post(tokenUrl(), form({ grant_type: EXCHANGE, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN, deployment: `${ns.name}/airflow`, ...extra }, headers))
    .then(tally);
const federated = async (claims: Record<string, unknown>, headers: Record<string, string>) => {
  const subjectToken = keep(await github.mint(github.claims({ aud: server.url, ...claims })));
  return post(tokenUrl(), form({ grant_type: EXCHANGE, subject_token: subjectToken, subject_token_type: JWT_TYPE, deployment: `${ns.name}/airflow` }, headers))
    .then(tally);
};

/** The audit log's files (the current one and its rotated backups) and their records, oldest first. */
function auditFiles(): string[] {
  const dir = logDir();
  return readdirSync(dir).filter((f) => f.startsWith(`${auditBase}`) && f.endsWith('.log')).sort((a, b) =>
    // The current file (no time stamp) is the newest.
    (a === `${auditBase}.log` ? 1 : 0) - (b === `${auditBase}.log` ? 1 : 0) || a.localeCompare(b)).map((f) => join(dir, f));
}
const records = (): AuditRecord[] => auditFiles().flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord));
const byAgent = (name: string) => records().filter((r) => r.userAgent === `audit-test/${name}`);

beforeAll(async () => {
  ca = makeIssuerCa();
  github = await TestOidcIssuer.start(ca);
  ns = await createNamespace('audit');
  identity = await installOperatorIdentity();
  auditBase = `audit-${process.pid}-${Date.now()}`;
  const federation = ['--federation-issuers', github.url];
  server = await startTokenServer({
    kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, waitReady: false,
    args: [...federation, '--federation-ca-file', ca.caFile, '--trusted-proxies', '127.0.0.1',
      '--audit-log-path', join(logDir(), `${auditBase}.log`), '--audit-log-maxsize', `${MAX_SIZE / 1024}Ki`, '--audit-log-maxbackup', '0'],
  });
  controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, args: federation });
  await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
  await createApiKey(ns.name, 'ci', { deploymentRef: { name: 'airflow' }, permissions: ['deploy', 'read'] });
  await waitForReady(ns.name, 'ci');
  key = credentialsOf((await getSecret(ns.name, 'ci'))!);
  keep(key.secret);
  await createFederatedCredential(ns.name, 'gha', {
    deploymentRef: { name: 'airflow' }, issuer: github.url, subject: SUBJECT, permissions: ['deploy'],
  });
  deployerToken = keep(await serviceAccountToken(ns.name, 'deployer'));
  await bindTokenRequester(identity, ns.name, ns.name, 'deployer', 'deployment-token-requester');
  // The server's watch knows the key, the credential, and RBAC lets the deployer in (each first success is counted too).
  await waitFor('the key at the token server', async () => (await clientCredentials({}, ua('warm-up'))).status === 200, 30_000, 100);
  await waitFor('the federated credential at the token server', async () => (await federated({}, ua('warm-up'))).status === 200, 30_000, 200);
  await waitFor('the token exchange', async () => (await exchange(deployerToken, ua('warm-up'))).status === 200, 30_000, 200);
}, 300_000);

afterAll(async () => {
  await Promise.all([server?.stop(), controller?.stop()]);
  await identity?.cleanup();
  await ns?.cleanup();
  await github?.stop();
  ca?.cleanup();
});

/** Each refusal: a request with its own User-Agent, and what its record must say. */
const REFUSALS: [string, () => Promise<Answer>, Partial<AuditRecord>][] = [
  // Well formed (its checksum holds), but not this key's.
  ['wrong-secret', () => clientCredentials({ client_secret: keep(generateSecret()) }, ua('wrong-secret')),
    { status: 401, error: 'invalid_client', grantType: 'client_credentials' }],
  ['secret-as-client-id', () => clientCredentials({ client_id: key.secret }, ua('secret-as-client-id')),
    { status: 401, error: 'invalid_client', reason: 'malformed_client_id', grantType: 'client_credentials' }],
  ['scope', () => clientCredentials({ scope: 'admin' }, ua('scope')), { status: 400, error: 'invalid_scope', reason: 'invalid_scope' }],
  ['audience', () => clientCredentials({ audience: 'https://elsewhere.example.test' }, ua('audience')),
    { status: 400, error: 'invalid_target', reason: 'invalid_target' }],
  ['grant', () => post(tokenUrl(), json({ grant_type: 'password', username: 'u', password: 'p' }, ua('grant'))),
    { status: 400, error: 'unsupported_grant_type', reason: 'unsupported_grant_type' }],
  ['bad-json', () => post(tokenUrl(), { headers: { 'content-type': 'application/json', ...ua('bad-json') }, body: '{"grant_type":' }),
    { status: 400, error: 'invalid_request', reason: 'malformed_request' }],
  ['too-large', () => post(tokenUrl(), { headers: { 'content-type': 'application/json', ...ua('too-large') }, body: 'x'.repeat(64 * 1024) }),
    { status: 413, reason: 'body_too_large' }],
  ['k8s-bad-token', () => exchange('not-a-kubernetes-token', ua('k8s-bad-token')),
    { status: 400, error: 'invalid_grant', reason: 'invalid_grant', grantType: EXCHANGE }],
  ['k8s-no-rights', async () => exchange(keep(await serviceAccountToken(ns.name, 'stranger')), ua('k8s-no-rights')),
    { status: 403, error: 'access_denied', reason: 'access_denied', subject: 'system:serviceaccount:NS:stranger' }],
  ['federated-wrong-repo', () => federated({ sub: 'repo:acme/other:ref:refs/heads/main' }, ua('federated-wrong-repo')),
    { status: 400, error: 'invalid_grant', reason: 'federated_token_refused', detail: 'no FederatedCredential matches the audience, subject and claims' }],
];

describe('the audit log of the token server', () => {
  it('has one record per issued token of every grant, exactly once, with who, what and for whom, and one per refusal with its reason', async () => {
    for (let i = 0; i < 30; i++) expect((await clientCredentials({}, ua(`cc-${i}`))).status).toBe(200);
    expect((await clientCredentials({ scope: 'read' }, { ...ua('basic'), authorization: `Basic ${Buffer.from(`${key.keyId}:${key.secret}`).toString('base64')}` })).status)
      .toBe(400); // both methods at once: refused (two_auth_methods)
    expect((await exchange(deployerToken, ua('k8s'), { scope: 'read' })).status).toBe(200);
    expect((await federated({}, ua('federated'))).status).toBe(200);
    // Through the trusted proxy (127.0.0.1), X-Forwarded-For names the client; from an untrusted peer it is ignored.
    const viaProxy = tally(await postFrom('127.0.0.1', tokenUrl(), json({
      grant_type: 'client_credentials', client_id: key.keyId, client_secret: key.secret, audience: AUDIENCE,
    }, { ...ua('via-proxy'), 'x-forwarded-for': '203.0.113.7' })));
    const spoofed = tally(await postFrom('127.0.0.2', tokenUrl(), json({
      grant_type: 'client_credentials', client_id: key.keyId, client_secret: key.secret, audience: AUDIENCE,
    }, { ...ua('spoofed'), 'x-forwarded-for': '203.0.113.8' })));
    expect([viaProxy.status, spoofed.status]).toEqual([200, 200]);
    for (const [, send] of REFUSALS) expect((await send()).status).toBeGreaterThanOrEqual(400);

    // Written in the background: wait until the metric counts every record, then stop the server (which drains).
    const metric = async () => Number(/^apikey_operator_audit_records_total\{result="written"\} (\d+)$/m.exec(await scrapeMetrics(server))?.[1] ?? 0);
    await waitFor('the audit records written', async () => (await metric()) >= jtis.length + REFUSALS.length + 1, 10_000, 100);
    expect(await scrapeMetrics(server)).not.toMatch(/apikey_operator_audit_records_total\{result="dropped"\} [1-9]/);
    await server.stop();

    const all = records();
    const issued = all.filter((r) => r.outcome === 'issued');
    // Every jti a request received, exactly once; no issued record without a jti someone received.
    expect(issued.map((r) => r.jti).sort()).toEqual([...jtis].sort());
    expect(new Set(issued.map((r) => r.jti)).size).toBe(issued.length);
    for (const r of all) {
      expect(r).toMatchObject({ apiVersion: 'audit.apikeys.dev/v1', kind: 'TokenRequest' });
      expect(Date.parse(r.time)).not.toBeNaN();
    }

    expect(byAgent('cc-7')).toEqual([expect.objectContaining({
      outcome: 'issued', status: 200, grantType: 'client_credentials', keyId: key.keyId, subject: key.keyId, clientId: key.keyId,
      deployment: `${ns.name}/airflow`, audience: [AUDIENCE], scope: 'deploy read', clientAddress: '127.0.0.1',
    })]);
    expect(byAgent('cc-7')[0]!.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(byAgent('cc-7')[0]!.expiresAt!)).toBeGreaterThan(Date.now());
    expect(byAgent('k8s')).toEqual([expect.objectContaining({
      outcome: 'issued', grantType: EXCHANGE, subject: `system:serviceaccount:${ns.name}:deployer`, clientId: 'kubernetes',
      deployment: `${ns.name}/airflow`, audience: [AUDIENCE], scope: 'read',
    })]);
    expect(byAgent('federated')).toEqual([expect.objectContaining({
      outcome: 'issued', grantType: EXCHANGE, subject: SUBJECT, clientId: `federated:${ns.name}/gha`, federatedCredential: `${ns.name}/gha`,
      federatedIssuer: github.url, deployment: `${ns.name}/airflow`, scope: 'deploy',
    })]);
    expect(byAgent('via-proxy')).toEqual([expect.objectContaining({ outcome: 'issued', clientAddress: '203.0.113.7' })]);
    expect(byAgent('spoofed')).toEqual([expect.objectContaining({ outcome: 'issued', clientAddress: '127.0.0.2' })]);
    expect(byAgent('basic')).toEqual([expect.objectContaining({ outcome: 'refused', reason: 'two_auth_methods', grantType: 'client_credentials' })]);

    for (const [name, , want] of REFUSALS) {
      const expected = { ...want, subject: want.subject?.replace('NS', ns.name) };
      if (expected.subject === undefined) delete expected.subject;
      expect(byAgent(name), name).toEqual([expect.objectContaining({ outcome: 'refused', ...expected })]);
    }
    // What the refusal knew: the key id of a wrong secret and its Deployment only after the secret matched.
    expect(byAgent('wrong-secret')[0]).toMatchObject({ keyId: key.keyId, reason: 'wrong_secret' });
    expect(byAgent('wrong-secret')[0]!.deployment).toBeUndefined();
    expect(byAgent('scope')[0]).toMatchObject({ keyId: key.keyId, deployment: `${ns.name}/airflow` });
    // A secret sent as the client id is no key id: it is not recorded (nor anywhere else in the log).
    expect(byAgent('secret-as-client-id')[0]!.keyId).toBeUndefined();
  });

  it('rotates by size: several files, none above --audit-log-maxsize, each line a whole record', () => {
    const files = auditFiles();
    expect(files.length).toBeGreaterThan(2);
    for (const f of files) {
      expect(statSync(f).size).toBeLessThanOrEqual(MAX_SIZE);
      expect(statSync(f).mode & 0o777).toBe(0o600);
      for (const line of readFileSync(f, 'utf8').split('\n').filter(Boolean)) expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
  });

  it('holds no secret, no token and no subject token', () => {
    const text = auditFiles().map((f) => readFileSync(f, 'utf8')).join('\n');
    expect(text.length).toBeGreaterThan(0);
    for (const s of secrets) expect(text.includes(s)).toBe(false);
    expect(text).not.toMatch(/aks_[0-9A-Za-z]{20}/);
    expect(text).not.toMatch(/eyJ[0-9A-Za-z_-]{10,}\.eyJ/);
  });
});
