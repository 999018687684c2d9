/**
 * The kubectl plugin (issue 5 item 4) as a real process, the way kubectl
 * runs it, against the real control plane with the real controller and token
 * server (each with the chart's ServiceAccount and RBAC): every command, and
 * `token --deployment` (issue 6 item 3) both against a stand-in endpoint that
 * records what the plugin sends and end to end, a ServiceAccount's token
 * exchanged by the real token server; and the in-cluster Job example (issue 5
 * item 6), its shell script run by a real /bin/sh with the environment a Pod
 * would get from the real Secret.
 */
import { createServer } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { ApiKey, Deployment } from '../src/api/index.ts';
import { hashSecret } from '../src/keys/format.ts';
import { freePort } from './cluster/controlplane.ts';
import { clusterState, createNamespace, kubectl, serviceAccountKubeconfig, type TestNamespace } from './support/cluster.ts';
import { bindTokenRequester, installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { ROOT } from './support/paths.ts';
import { runPlugin, runPluginOnTerminal, type PluginOptions } from './support/plugin.ts';
import { MAIN, PLUGIN, recordSecret, startController, startTokenServer, type RunningProcess } from './support/processes.ts';
import {
  adminClient, createDeployment, credentialsOf, deploymentPath, getApiKey, getSecret, readyOf, uniqueAudience, waitForReady,
  waitUntilAudienceFree,
} from './support/resources.ts';
import { run, type Run } from './support/run.ts';
import { issued } from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

const AUDIENCE = uniqueAudience('airflow');
const JOB_EXAMPLE = join(ROOT, 'manifests', 'examples', 'job-fetch-token.yaml');

let ns: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: RunningProcess & { url: string };
let jwks: JWTVerifyGetKey;
let dir: string;
let tokenUrl: string;

/** The plugin, as the admin in the test's namespace unless told otherwise. */
const plugin = (args: string[], opts: Partial<PluginOptions> = {}) => runPlugin(args, { namespace: ns.name, ...opts });

/** A failure is one "error: ..." line on stderr, without a stack trace. */
function expectCleanFailure(r: Run, code: number, ...fragments: (string | RegExp)[]): void {
  expect(r.code, `stderr: ${r.stderr}`).toBe(code);
  expect(r.stderr).toMatch(/^error: /m);
  expect(r.stderr).not.toMatch(/\n\s+at |Error: |node:internal/);
  for (const f of fragments) expect(r.stderr).toMatch(f);
}

async function verify(token: string, audience = AUDIENCE): Promise<JWTPayload> {
  expect(decodeProtectedHeader(token).typ).toBe('at+jwt');
  const { payload } = await jwtVerify(token, jwks, { issuer: server.url, audience, typ: 'at+jwt' });
  return payload;
}

const secretOf = async (name: string) => credentialsOf((await getSecret(ns.name, name))!);

beforeAll(async () => {
  ns = await createNamespace('plugin');
  dir = mkdtempSync(join(tmpdir(), 'kubectl-plugin-'));
  identity = await installOperatorIdentity();
  controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace });
  server = await startTokenServer({ kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace });
  tokenUrl = `${server.url}/oauth/token`;
  jwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`));
  await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
});

afterAll(async () => {
  await server?.stop();
  await controller?.stop();
  await identity?.cleanup();
  await ns?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('kubectl apikey create', () => {
  it('waits with progress on stderr, then prints the key id and the secret once, with the warning, and they are the Secret\'s', async () => {
    const r = await plugin(['create', 'ci', '--deployment', 'airflow', '--description', 'GitHub Actions deploy job']);
    expect(r.code, r.stderr).toBe(0);
    const c = await secretOf('ci');
    expect(r.stdout).toContain(`API_KEY_ID:      ${c.keyId}`);
    expect(r.stdout).toContain(`API_KEY_SECRET:  ${c.secret}`);
    expect(r.stdout.split(c.secret)).toHaveLength(2);
    expect(r.stdout).toMatch(/WARNING: this is the only time the secret is shown/);
    expect(r.stdout).toContain('Secret "ci"');
    expect(r.stdout).toContain('curl');
    expect(r.stderr).toContain('waiting for the operator to make ApiKey "ci" Ready');
    expect(r.stderr).not.toContain(c.secret);
    const ak = (await getApiKey(ns.name, 'ci'))!;
    expect(ak.spec).toMatchObject({ deploymentRef: { name: 'airflow' }, description: 'GitHub Actions deploy job' });
    expect(ak.status?.keyId).toBe(c.keyId);
  });

  it('with -o json prints keyId, secret, tokenUrl, audience and secretName, and the warning on stderr', async () => {
    const r = await plugin(['create', 'ci-json', '--deployment', 'airflow', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    recordSecret(out.secret!);
    const c = await secretOf('ci-json');
    expect(out).toEqual({ keyId: c.keyId, secret: c.secret, tokenUrl: c.tokenUrl, audience: AUDIENCE, secretName: 'ci-json' });
    expect(r.stderr).toMatch(/WARNING: this is the only time the secret is shown/);
  });

  it('passes every spec flag to the ApiKey, and -o yaml', async () => {
    const r = await plugin([
      'create', 'reader', '--deployment', 'airflow', '--permissions', 'read', '--secret-name', 'reader-creds',
      '--expires-in', '720h', '--rotate-every', '2160h', '--grace-period', '30m', '--token-ttl', '1h', '-o', 'yaml',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = parseYaml(r.stdout) as Record<string, string>;
    recordSecret(out.secret!);
    expect(out.secretName).toBe('reader-creds');
    expect((await secretOf('reader-creds')).secret).toBe(out.secret);
    const ak = (await getApiKey(ns.name, 'reader'))!;
    expect(ak.spec).toMatchObject({
      permissions: ['read'], secretName: 'reader-creds', rotation: { every: '2160h', gracePeriod: '30m' }, tokenTTL: '1h',
    });
    const expires = Date.parse(ak.spec.expiresAt!);
    expect(Math.abs(expires - (Date.now() + 720 * 3600_000))).toBeLessThan(120_000);
  });

  it('refuses a missing Deployment before creating anything, naming the namespace and how to list Deployments', async () => {
    const r = await plugin(['create', 'orphan', '--deployment', 'nope']);
    expectCleanFailure(r, 1, /Deployment "nope"/, new RegExp(`namespace "${ns.name}"`), new RegExp(`kubectl get deployments\\.apikeys\\.dev -n ${ns.name}`));
    expect(await getApiKey(ns.name, 'orphan')).toBeUndefined();
  });

  it('prints the condition and exits non-zero when the key cannot become Ready (SecretConflict)', async () => {
    await adminClient().create(`/api/v1/namespaces/${ns.name}/secrets`, {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'taken' }, stringData: { password: 'not-ours' },
    });
    const r = await plugin(['create', 'taken', '--deployment', 'airflow', '--timeout', '30s']);
    expectCleanFailure(r, 1, /SecretConflict/, /Secret taken exists and is not controlled by this ApiKey/, /kubectl apikey delete taken/);
    expect(r.stdout).toBe('');
  });

  it('refuses a key that exists already, and bad flags with exit code 2', async () => {
    expectCleanFailure(await plugin(['create', 'ci', '--deployment', 'airflow']), 1, /already exists/, /rotate ci --show-secret/);
    expectCleanFailure(await plugin(['create', 'x']), 2, /--deployment/);
    expectCleanFailure(await plugin(['create', 'x', '--deployment', 'airflow', '--permissions', 'admin']), 2, /unknown: admin/);
    expectCleanFailure(await plugin(['create', 'x', '--deployment', 'airflow', '--token-ttl', '1d']), 2, /--token-ttl must be a duration/);
    expectCleanFailure(await plugin(['create', 'x', '--deployment', 'airflow', '--expires-at', 'tomorrow']), 2, /RFC 3339/);
    expectCleanFailure(await plugin(['create', 'x', '--deployment', 'airflow', '--frobnicate']), 2, /unknown flag --frobnicate/);
    expectCleanFailure(await plugin(['create', 'x', '--deployment', 'airflow', '-o', 'wide']), 2, /-o json or -o yaml/);
    expect(await getApiKey(ns.name, 'x')).toBeUndefined();
  });
});

describe('kubectl apikey list and deployments', () => {
  it('lists the keys as a table, and as a List with -o json and -o yaml, without any secret', async () => {
    const c = await secretOf('ci');
    const table = await plugin(['list']);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+DEPLOYMENT\s+KEY ID\s+PERMISSIONS\s+READY\s+EXPIRES\s+LAST USED\s+AGE$/);
    expect(table.stdout).toMatch(new RegExp(`^ci\\s+airflow\\s+${c.keyId}\\s+deploy\\s+True\\s+<never>\\s+\\S+\\s+\\d+[smhd]`, 'm'));
    // It expires in 720h, within the controller's default first warning (30 days): Expiring=True.
    expect(table.stdout).toMatch(/^reader\s+airflow\s+ak_\w+\s+read\s+True\s+in 29d\S* \(soon\)\s+/m);
    expect(table.stdout).toMatch(/^taken\s+airflow\s+<pending>\s+deploy\s+False \(SecretConflict\)/m);

    const json = await plugin(['list', '-o', 'json']);
    const list = JSON.parse(json.stdout) as { kind: string; items: ApiKey[] };
    expect(list.kind).toBe('List');
    expect(list.items.map((i) => i.metadata.name)).toEqual(expect.arrayContaining(['ci', 'ci-json', 'reader', 'taken']));
    expect(list.items.every((i) => i.kind === 'ApiKey' && i.metadata.managedFields === undefined)).toBe(true);
    const yaml = await plugin(['list', '-o', 'yaml']);
    expect((parseYaml(yaml.stdout) as { items: ApiKey[] }).items).toHaveLength(list.items.length);
    for (const out of [table.stdout, json.stdout, yaml.stdout]) expect(out).not.toContain(c.secret);
  });

  it('adds a NAMESPACE column with -A', async () => {
    const r = await plugin(['list', '-A'], { namespace: false });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^NAMESPACE\s+NAME\s+DEPLOYMENT/);
    expect(r.stdout).toMatch(new RegExp(`^${ns.name}\\s+ci\\s+airflow`, 'm'));
  });

  it('lists the Deployments with their key counts', async () => {
    await createDeployment(ns.name, 'empty', { maxTokenTTL: '1h' });
    await waitFor('key count of airflow', async () => {
      const d = await adminClient().get<Deployment>(deploymentPath(ns.name, 'airflow'));
      return d.status?.apiKeys === 4 ? d : undefined;
    });
    await waitFor('empty Ready', async () => readyOf(await adminClient().get<Deployment>(deploymentPath(ns.name, 'empty')))?.status === 'True');
    const r = await plugin(['deployments']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^NAME\s+KEYS\s+MAX TTL\s+AUDIENCES\s+READY\s+AGE$/);
    expect(r.stdout).toMatch(new RegExp(`^airflow\\s+4\\s+24h\\s+${AUDIENCE.replace(/\./g, '\\.')}\\s+True`, 'm'));
    expect(r.stdout).toMatch(/^empty\s+0\s+1h\s+<default>\s+True/m);
    const json = JSON.parse((await plugin(['deployments', '-o', 'json'])).stdout) as { items: Deployment[] };
    expect(json.items.find((d) => d.metadata.name === 'airflow')?.status?.apiKeys).toBe(4);
  });
});

describe('kubectl apikey describe', () => {
  it('summarises the key, its conditions and its events, and -o json gives the object and the events', async () => {
    const c = await secretOf('ci');
    const r = await plugin(['describe', 'ci']);
    expect(r.code, r.stderr).toBe(0);
    for (const re of [
      /^Deployment:\s+airflow$/m, new RegExp(`^Key ID:\\s+${c.keyId}$`, 'm'), /^Permissions:\s+deploy$/m,
      /^Secret:\s+ci /m, /^Token TTL:\s+24h$/m, /^Rotation:\s+on request only/m, /^Last rotation:\s+never$/m,
      /^Expires:\s+never$/m, /^Description:\s+GitHub Actions deploy job$/m, /^\s+Ready\s+True\s+SecretReady/m,
      /^\s+Normal\s+Created\s+.*Created Secret ci with key id/m,
    ]) expect(r.stdout).toMatch(re);
    expect(r.stdout).not.toContain(c.secret);
    const j = JSON.parse((await plugin(['describe', 'ci', '-o', 'json'])).stdout) as { apiKey: ApiKey; events: { reason: string }[] };
    expect(j.apiKey.status?.keyId).toBe(c.keyId);
    expect(j.events.map((e) => e.reason)).toContain('Created');
  });

  it('says clearly when the key does not exist', async () => {
    expectCleanFailure(await plugin(['describe', 'nope']), 1, new RegExp(`ApiKey "nope" not found in namespace "${ns.name}"`));
  });
});

describe('kubectl apikey token', () => {
  it('prints only the access token, a JWT of the key that verifies against the JWKS', async () => {
    const c = await secretOf('ci');
    const r = await plugin(['token', 'ci'], { env: { APIKEY_OPERATOR_TOKEN_URL: tokenUrl } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const claims = await verify(r.stdout.trim());
    expect(claims).toMatchObject({ sub: c.keyId, client_id: c.keyId, scope: 'deploy', deployment: `${ns.name}/airflow` });
  });

  it('prints the whole token response with -o json, and narrows the scope with --scope and --token-url', async () => {
    const r = await plugin(['token', 'reader', '--token-url', server.url, '--scope', 'read', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(res).toMatchObject({ token_type: 'Bearer', scope: 'read', expires_in: 3600 });
    expect((await verify(res.access_token as string)).scope).toBe('read');
  });

  it('shows the token endpoint\'s error for a scope beyond the key', async () => {
    const r = await plugin(['token', 'reader', '--scope', 'deploy', '--token-url', tokenUrl]);
    expectCleanFailure(r, 1, /invalid_scope/);
    expect(r.stdout).toBe('');
  });

  it('explains that the in-cluster TOKEN_URL is unreachable from outside and how to port-forward', async () => {
    const r = await plugin(['token', 'ci']);
    expectCleanFailure(r, 1, /cannot reach the token endpoint at http:\/\/token\.test\/oauth\/token/, /TOKEN_URL from Secret "ci"/,
      /kubectl -n apikey-operator port-forward svc\/apikey-operator-token 8080:8080/, /--token-url/);
    const closed = await freePort();
    expectCleanFailure(await plugin(['token', 'ci', '--token-url', `http://127.0.0.1:${closed}/oauth/token`]), 1,
      new RegExp(`cannot reach the token endpoint at http://127\\.0\\.0\\.1:${closed}/oauth/token \\(ECONNREFUSED\\)`));
  });

  it('refuses --deployment with the admin\'s client certificate, saying why and what to do instead', async () => {
    const r = await plugin(['token', '--deployment', 'airflow', '--token-url', tokenUrl]);
    expectCleanFailure(r, 1, /client certificate/, /TokenReview/, /API key/, /kubectl create token/);
    expectCleanFailure(await plugin(['token', '--deployment', 'airflow']), 2, /--token-url/, /APIKEY_OPERATOR_TOKEN_URL/);
    expectCleanFailure(await plugin(['token', 'ci', '--deployment', 'airflow']), 2, /not both/);
    expectCleanFailure(await plugin(['token']), 2, /NAME/);
  });
});

describe('kubectl apikey token --deployment (the client side of RFC 8693)', () => {
  /** A stand-in token endpoint that records what the plugin sends. */
  async function recordingEndpoint(): Promise<{ url: string; requests: URLSearchParams[]; close(): Promise<void> }> {
    const requests: URLSearchParams[] = [];
    const srv = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => { body += d.toString('utf8'); });
      req.on('end', () => {
        expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
        requests.push(new URLSearchParams(body));
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({
          access_token: 'header.payload.signature', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          token_type: 'Bearer', expires_in: 3600, scope: 'read',
        }));
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    return { url: `http://127.0.0.1:${port}/oauth/token`, requests, close: () => new Promise((r) => srv.close(() => r())) };
  }

  it('exchanges the bearer token of a static-token kubeconfig and of an exec plugin, for namespace/name', async () => {
    const kc = await serviceAccountKubeconfig(ns.name, 'exchanger', dir);
    const doc = parseYaml(readFileSync(kc, 'utf8')) as { users: { user: Record<string, unknown> }[] };
    const saToken = doc.users[0]!.user.token as string;
    // The same identity through an exec credential plugin (as cloud CLIs and OIDC helpers do it).
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: saToken } });
    doc.users[0]!.user = { exec: {
      apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, interactiveMode: 'Never',
      args: ['-e', `process.stdout.write(${JSON.stringify(credential)})`],
    } };
    const execKc = join(dir, 'exec-kubeconfig');
    writeFileSync(execKc, stringifyYaml(doc), { mode: 0o600 });

    const endpoint = await recordingEndpoint();
    try {
      const r1 = await plugin(['token', '--deployment', 'airflow', '--scope', 'read', '--audience', AUDIENCE], {
        kubeconfig: kc, env: { APIKEY_OPERATOR_TOKEN_URL: endpoint.url },
      });
      expect(r1.code, r1.stderr).toBe(0);
      expect(r1.stdout).toBe('header.payload.signature\n');
      const r2 = await plugin(['token', '--deployment', 'airflow', '--token-url', endpoint.url, '-o', 'json'], { kubeconfig: execKc });
      expect(r2.code, r2.stderr).toBe(0);
      expect(JSON.parse(r2.stdout)).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', expires_in: 3600 });
      const [a, b] = endpoint.requests.map((p) => Object.fromEntries(p));
      expect(a).toEqual({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: saToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', deployment: `${ns.name}/airflow`,
        audience: AUDIENCE, scope: 'read',
      });
      expect(b).toEqual({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: saToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', deployment: `${ns.name}/airflow`,
      });
    } finally {
      await endpoint.close();
    }
  });

  it('refuses to send the Kubernetes credential over plain HTTP to another host, before it even gets the credential', async () => {
    const kc = await serviceAccountKubeconfig(ns.name, 'exchanger', dir);
    const doc = parseYaml(readFileSync(kc, 'utf8')) as { users: { user: Record<string, unknown> }[] };
    // An exec credential plugin that leaves a mark when it is asked for the credential.
    const mark = join(dir, 'credential-fetched');
    const saToken = doc.users[0]!.user.token as string;
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: saToken } });
    doc.users[0]!.user = { exec: {
      apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, interactiveMode: 'Never',
      args: ['-e', `require('node:fs').writeFileSync(${JSON.stringify(mark)}, 'x'); process.stdout.write(${JSON.stringify(credential)})`],
    } };
    const marking = join(dir, 'marking-kubeconfig');
    writeFileSync(marking, stringifyYaml(doc), { mode: 0o600 });
    // 192.0.2.1 is not this machine; port 1 is one fetch never connects to, so nothing could leave even if the check were missing.
    const remote = 'http://192.0.2.1:1/oauth/token';
    for (const [args, env, from] of [
      [['--token-url', remote], {}, /\(--token-url\)/],
      [[], { APIKEY_OPERATOR_TOKEN_URL: remote }, /\(APIKEY_OPERATOR_TOKEN_URL\)/],
    ] as const) {
      const t0 = Date.now();
      const r = await plugin(['token', '--deployment', 'airflow', ...args], { kubeconfig: marking, env });
      expectCleanFailure(r, 2, /refusing to send your Kubernetes credential over plain HTTP to 192\.0\.2\.1:1/, from, /act as you/,
        /https:\/\//, /port-forward svc\/apikey-operator-token 8080:8080/, /--token-url http:\/\/localhost:8080\/oauth\/token/);
      expect(r.stderr).not.toMatch(/cannot reach/);
      expect(r.stdout).toBe('');
      expect(Date.now() - t0).toBeLessThan(10_000);
    }
    expect(existsSync(mark)).toBe(false);
    // On this machine it is sent (a port-forward's address), over http://127.0.0.1 and http://localhost alike.
    const endpoint = await recordingEndpoint();
    try {
      for (const url of [endpoint.url, endpoint.url.replace('127.0.0.1', 'localhost')]) {
        const r = await plugin(['token', '--deployment', 'airflow', '--token-url', url], { kubeconfig: marking });
        expect(r.code, r.stderr).toBe(0);
      }
      expect(existsSync(mark)).toBe(true);
      expect(endpoint.requests.map((p) => p.get('subject_token'))).toEqual([saToken, saToken]);
    } finally {
      await endpoint.close();
    }
  });

  it('shows the token endpoint\'s refusal', async () => {
    const kc = await serviceAccountKubeconfig(ns.name, 'exchanger', dir);
    const r = await plugin(['token', '--deployment', 'airflow', '--token-url', tokenUrl], { kubeconfig: kc });
    expectCleanFailure(r, 1, new RegExp(`the token endpoint at ${tokenUrl.replace(/\./g, '\\.')} refused: `));
  });
});

describe('kubectl apikey token --deployment with a ServiceAccount token, against the real token server', () => {
  let elsewhere: TestNamespace;
  let bound: string;
  let unbound: string;
  const exchange = (kubeconfig: string, namespace = ns.name, args: string[] = []) =>
    plugin(['token', '--deployment', 'airflow', ...args], { kubeconfig, namespace, env: { APIKEY_OPERATOR_TOKEN_URL: tokenUrl } });

  beforeAll(async () => {
    elsewhere = await createNamespace('elsewhere');
    await createDeployment(elsewhere.name, 'airflow', { audiences: [uniqueAudience('elsewhere')] });
    // The chart's role for people who may get temporary tokens, bound in one namespace only.
    bound = await serviceAccountKubeconfig(ns.name, 'deployer', dir);
    await bindTokenRequester(identity, ns.name, ns.name, 'deployer', 'deployment-token-requester', 'airflow', 'deployer-tokens');
    unbound = await serviceAccountKubeconfig(ns.name, 'stranger', dir);
  });

  afterAll(async () => {
    await elsewhere?.cleanup();
  });

  it('prints a short-lived JWT for the Deployment whose subject is the ServiceAccount, verified against the JWKS', async () => {
    const r = await exchange(bound);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const payload = await verify(r.stdout.trim());
    expect(payload.sub).toBe(`system:serviceaccount:${ns.name}:deployer`);
    expect(payload.deployment).toBe(`${ns.name}/airflow`);
    expect(String(payload.sub)).not.toMatch(/^ak_/);
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(3600);
  });

  it('gives the whole RFC 8693 response with -o json', async () => {
    const r = await exchange(bound, ns.name, ['-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(res.token_type).toBe('Bearer');
    expect(['urn:ietf:params:oauth:token-type:access_token', 'urn:ietf:params:oauth:token-type:jwt']).toContain(res.issued_token_type);
    expect(res.expires_in).toBeLessThanOrEqual(3600);
  });

  it('is refused for a Deployment of a namespace where the account has no binding', async () => {
    const r = await exchange(bound, elsewhere.name);
    expectCleanFailure(r, 1, /^error: the token endpoint at .* refused: (access_denied|invalid_target)/m);
    expect(r.stdout).toBe('');
  });

  it('is refused for an account without the role', async () => {
    const r = await exchange(unbound);
    expectCleanFailure(r, 1, /^error: the token endpoint at .* refused: (access_denied|invalid_target)/m);
  });
});

describe('kubectl apikey rotate', () => {
  it('rotates: the Secret changes, the status keeps the previous hash, and the grace deadline is printed', async () => {
    const before = await secretOf('ci');
    const r = await plugin(['rotate', 'ci']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('waiting for the operator to rotate ApiKey "ci"');
    const ak = (await getApiKey(ns.name, 'ci'))!;
    expect(ak.status?.previousSecretHash).toBe(hashSecret(before.secret));
    expect(r.stdout).toContain(`keeps working until ${ak.status?.previousSecretValidUntil}`);
    expect(Date.parse(ak.status!.previousSecretValidUntil!) - Date.parse(ak.status!.lastRotationTime!)).toBe(3600_000);
    const after = await waitFor('the new secret in the Secret', async () => {
      const c = await secretOf('ci');
      return c.secret !== before.secret && hashSecret(c.secret) === ak.status?.secretHash ? c : undefined;
    });
    expect(after.keyId).toBe(before.keyId);
    expect(r.stdout).not.toContain(after.secret);
  });

  it('prints the new secret once with --show-secret, and it is the Secret\'s', async () => {
    const r = await plugin(['rotate', 'ci', '--show-secret']);
    expect(r.code, r.stderr).toBe(0);
    const c = await secretOf('ci');
    expect(r.stdout).toContain(`API_KEY_SECRET:  ${c.secret}`);
    expect(r.stdout.split(c.secret)).toHaveLength(2);
    expect(r.stdout).toMatch(/WARNING: this is the only time the secret is shown/);
    const j = await plugin(['rotate', 'ci', '--show-secret', '-o', 'json']);
    const out = JSON.parse(j.stdout) as { secret: string; keyId: string; previousSecretValidUntil: string };
    recordSecret(out.secret);
    expect(out.secret).toBe((await secretOf('ci')).secret);
    expect(out.keyId).toBe(c.keyId);
    // The key's tokens come from the new secret.
    const t = await plugin(['token', 'ci', '--token-url', tokenUrl]);
    expect(t.code, t.stderr).toBe(0);
  });
});

describe('kubectl apikey delete', () => {
  it('refuses without --yes when stdin is not a terminal, and changes nothing', async () => {
    const r = await plugin(['delete', 'ci-json']);
    expectCleanFailure(r, 2, /stdin is not a terminal/, /--yes/);
    expect(await getApiKey(ns.name, 'ci-json')).toBeDefined();
  });

  it('asks y/N on a terminal: "n" keeps the key, "y" deletes it', async () => {
    const no = await runPluginOnTerminal(['delete', 'taken'], 'n\n', { namespace: ns.name });
    expect(no.code, no.stdout).toBe(1);
    expect(no.stdout).toMatch(/Delete ApiKey "taken" .*Deployment "airflow"/);
    expect(no.stdout).toContain('[y/N]');
    expect(no.stdout).toContain('not deleted');
    expect(await getApiKey(ns.name, 'taken')).toBeDefined();
    const yes = await runPluginOnTerminal(['delete', 'taken'], 'y\n', { namespace: ns.name });
    expect(yes.code, yes.stdout).toBe(0);
    expect(yes.stdout).toContain('"taken" deleted');
    expect(await getApiKey(ns.name, 'taken')).toBeUndefined();
  });

  it('deletes with --yes, and the garbage collector removes its Secret', async () => {
    const r = await plugin(['delete', 'ci-json', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('"ci-json" deleted');
    expect(await getApiKey(ns.name, 'ci-json')).toBeUndefined();
    await waitFor('the Secret deleted by the GC', async () => (await getSecret(ns.name, 'ci-json')) === undefined, 90_000);
    expectCleanFailure(await plugin(['delete', 'ci-json', '--yes']), 1, /ApiKey "ci-json" not found/);
  });
});

describe('errors', () => {
  it('says which verb, resource and namespace were refused to a user without RBAC', async () => {
    const kc = await serviceAccountKubeconfig(ns.name, 'nobody', dir);
    expectCleanFailure(await plugin(['list'], { kubeconfig: kc }), 1,
      /forbidden: you \(system:serviceaccount:.*:nobody\) may not list apikeys\.apikeys\.dev/, new RegExp(`namespace "${ns.name}"`),
      /kubectl auth can-i list apikeys\.apikeys\.dev/);
    expectCleanFailure(await plugin(['create', 'x', '--deployment', 'airflow'], { kubeconfig: kc }), 1,
      /may not get deployments\.apikeys\.dev "airflow"/);
    expectCleanFailure(await plugin(['deployments', '-A'], { kubeconfig: kc, namespace: false }), 1,
      /may not list deployments\.apikeys\.dev across all namespaces/);
  });

  it('names the server and suggests checking the context when the cluster is unreachable', async () => {
    const port = await freePort();
    const kc = join(dir, 'closed-kubeconfig');
    writeFileSync(kc, readFileSync(clusterState().kubeconfig, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${port}`));
    const r = await plugin(['list'], { kubeconfig: kc });
    expectCleanFailure(r, 1, new RegExp(`cannot reach the Kubernetes API at https://127\\.0\\.0\\.1:${port}`), /ECONNREFUSED/, /context/);
  });

  it('refuses an unknown command, a missing kubeconfig and an unknown context', async () => {
    expectCleanFailure(await plugin(['frobnicate']), 2, /unknown command "frobnicate"/);
    expectCleanFailure(await plugin(['list'], { kubeconfig: join(dir, 'absent') }), 1, /kubeconfig .*absent does not exist/);
    expectCleanFailure(await plugin(['list', '--context', 'nowhere']), 2, /context "nowhere" is not in the kubeconfig/);
  });
});

describe('a kubeconfig split over several files (KUBECONFIG=a:b)', () => {
  /**
   * The admin's cluster in one file; its user, context and current-context in
   * another, which also defines the same cluster name with a server where
   * nothing listens: the first file's entry must win, as in kubectl.
   */
  function splitKubeconfig(): string {
    const admin = parseYaml(readFileSync(clusterState().kubeconfig, 'utf8')) as Record<string, unknown> & { clusters: { name: string }[] };
    const clusters = join(dir, 'split-clusters');
    const credentials = join(dir, 'split-credentials');
    writeFileSync(clusters, stringifyYaml({ apiVersion: 'v1', kind: 'Config', clusters: admin.clusters }), { mode: 0o600 });
    const elsewhere = admin.clusters.map((c) => ({ name: c.name, cluster: { server: `https://127.0.0.1:${closedPort}` } }));
    writeFileSync(credentials, stringifyYaml({
      apiVersion: 'v1', kind: 'Config', clusters: elsewhere, users: admin.users, contexts: admin.contexts, 'current-context': admin['current-context'],
    }), { mode: 0o600 });
    return `${join(dir, 'absent')}:${clusters}:${credentials}`;
  }
  let closedPort: number;
  beforeAll(async () => { closedPort = await freePort(); });

  it.each([['kubectl-apikey', PLUGIN], ['apikey-operator', MAIN]])('is merged as kubectl merges it by %s list', async (_name, program) => {
    const KUBECONFIG = splitKubeconfig();
    const r = await plugin(['list'], { program, kubeconfig: false, env: { KUBECONFIG } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ci\s+airflow/m);
    const kubectlView = await run(clusterState().binaries.kubectl, ['config', 'view', '-o', 'jsonpath={.clusters[0].cluster.server}'], {
      env: { ...process.env, KUBECONFIG },
    });
    expect(kubectlView.stdout).toBe(clusterState().server);
  });
});

describe('the same commands through apikey-operator', () => {
  it('lists keys with apikey-operator list, and shows help for every command', async () => {
    const r = await plugin(['list'], { program: MAIN });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ci\s+airflow/m);
    for (const cmd of ['create', 'list', 'describe', 'rotate', 'revoke', 'set-networks', 'delete', 'token', 'deployments']) {
      const h = await plugin([cmd, '--help'], { namespace: false });
      expect(h.code).toBe(0);
      expect(h.stdout).toContain(`kubectl apikey ${cmd}`);
      expect(h.stdout).toMatch(/Examples:/);
    }
  });
});

describe('as a kubectl plugin', () => {
  it('is found by kubectl on PATH as kubectl-apikey and run as kubectl apikey', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'kubectl-apikey'), `#!/bin/sh\nexec '${process.execPath}' '${PLUGIN}' "$@"\n`, { mode: 0o755 });
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    const kubectlWithPlugin = (args: string[]) => run(clusterState().binaries.kubectl, args, { env });
    const plugins = await kubectlWithPlugin(['plugin', 'list']);
    expect(plugins.stdout).toContain(join(bin, 'kubectl-apikey'));
    // kubectl passes everything after the plugin's name through, including its own flags.
    const r = await kubectlWithPlugin(['apikey', 'list', '--kubeconfig', clusterState().kubeconfig, '-n', ns.name]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^NAME\s+DEPLOYMENT\s+KEY ID/);
    expect(r.stdout).toMatch(/^ci\s+airflow/m);
    const missing = await kubectlWithPlugin(['apikey', 'describe', 'nope', '--kubeconfig', clusterState().kubeconfig, '-n', ns.name]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: ApiKey "nope" not found/);
  });
});

describe('the in-cluster Job example', () => {
  interface JobDoc {
    kind: string;
    spec: { template: { spec: {
      automountServiceAccountToken: boolean;
      securityContext: Record<string, unknown>;
      containers: { command: string[]; args: string[]; envFrom: { secretRef: { name: string } }[]; env: { name: string; value: string }[]; securityContext: Record<string, unknown> }[];
    } } };
  }
  const job = () => parseYaml(readFileSync(JOB_EXAMPLE, 'utf8')) as JobDoc;

  it('is accepted by the API server (dry run), hardened, and takes its environment from the Secret ci-deployer', async () => {
    const r = await kubectl(['apply', '--dry-run=server', '-n', ns.name, '-f', JOB_EXAMPLE]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('job.batch/fetch-token created (server dry run)');
    const pod = job().spec.template.spec;
    const container = pod.containers[0]!;
    expect(container.envFrom).toEqual([{ secretRef: { name: 'ci-deployer' } }]);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  });

  it('fetches a token with the seed\'s JSON body when its script runs in /bin/sh with the Secret\'s environment', async () => {
    // The example's own Deployment and ApiKey, as a user would apply them. Its audience belongs to
    // the first Deployment that lists it: another test's copy must be gone first.
    await waitUntilAudienceFree('https://airflow-prod.example.com');
    for (const f of ['deployment.yaml', 'apikey-ci.yaml']) {
      const a = await kubectl(['apply', '-n', ns.name, '-f', join(ROOT, 'manifests', 'examples', f)]);
      expect(a.code, a.stderr).toBe(0);
    }
    await waitForReady(ns.name, 'ci-deployer');
    const c = await secretOf('ci-deployer');
    // Ready in the apiserver reaches the token server through its watch a moment later; the Job
    // asks once.
    await issued(server, c);
    const container = job().spec.template.spec.containers[0]!;
    expect(container.command).toEqual(['/bin/sh', '-c']);
    const probe = join(dir, 'token');
    // The script as the Pod runs it, then one probe line that hands the token to this test.
    const script = `${container.args[0]}\nprintf '%s' "$TOKEN" > '${probe}'\n`;
    const env = {
      // The container's own env (CA_FILE: curl ignores it for this test's plain-HTTP stand-in; test/serving-cert.test.ts runs it over TLS).
      ...Object.fromEntries(container.env.map((e) => [e.name, e.value])),
      PATH: process.env.PATH!, API_KEY_ID: c.keyId, API_KEY_SECRET: c.secret, AUDIENCE: c.audience,
      // The Secret's TOKEN_URL is the in-cluster Service; no Pod runs here, so the local token server stands in.
      TOKEN_URL: tokenUrl,
    };
    const runScript = (e: Record<string, string>) => run('/bin/sh', ['-c', script], { env: e });
    const ok = await runScript(env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe(`fetched an access token for key ${c.keyId}, valid for 86400s\n`);
    expect(c.audience).toBe('https://airflow-prod.example.com');
    const claims = await verify(readFileSync(probe, 'utf8'), c.audience);
    expect(claims).toMatchObject({ sub: c.keyId, scope: 'deploy', deployment: `${ns.name}/airflow-prod` });
    for (const out of [ok.stdout, ok.stderr]) expect(out).not.toContain(c.secret);

    // A wrong secret fails the Job with the endpoint's error, and still never prints a secret.
    // Change the last character to one it is not, or a secret ending in x would stay right.
    const bad = await runScript({ ...env, API_KEY_SECRET: `${c.secret.slice(0, -1)}${c.secret.endsWith('x') ? 'y' : 'x'}` });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('"error":"invalid_client"');
    expect(bad.stderr).not.toContain(c.secret.slice(4, 40));
  });
});
