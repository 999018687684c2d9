/**
 * spec.allowedNetworks on the real control plane, with the real token server
 * process (and the controller, with the chart's identities): clients on
 * several loopback addresses (the client socket bound to 127.0.0.2, .3, ...,
 * and ::1 against a second token server listening on IPv6 loopback), keys
 * with different lists, a Deployment's list intersected with its keys' and
 * its FederatedCredentials', a trusted proxy's X-Forwarded-For (and a forged
 * one from an untrusted peer, ignored). A refusal is byte for byte a wrong
 * secret's (or an untrusted external token's), throttled alike, counted in
 * the metric and written to the audit log; the apiserver refuses bad CIDRs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../src/keys/format.ts';
import { FEDERATED_REFUSAL } from '../src/token-server/grants/federated-exchange.ts';
import { createNamespace, kubectl, type TestNamespace } from './support/cluster.ts';
import { makeIssuerCa, TestOidcIssuer, type IssuerCa } from './support/federation-issuer.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { logDir, recordSecret, startController, startTokenServer, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, createFederatedCredential, credentialsOf, getSecret, uniqueAudience, waitForReady,
  type Credentials,
} from './support/resources.ts';
import { runPlugin } from './support/plugin.ts';
import { basic, form, json, postFrom, scrapeMetrics, type Answer } from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const SUBJECT = 'repo:acme/airflow-dags:ref:refs/heads/main';
const OPEN_AUDIENCE = uniqueAudience('nets-open');
const OFFICE_AUDIENCE = uniqueAudience('nets-office');

let ca: IssuerCa;
let github: TestOidcIssuer;
let ns: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: TokenServerProcess;
let server6: TokenServerProcess;
let auditPath: string;
/** Keys by name: on Deployment `open` (no list) or `office` (127.0.0.2/31 and ::1). */
const keys: Record<string, Credentials & { audience: string }> = {};

const KEYS: [name: string, deployment: 'open' | 'office', allowedNetworks: string[] | undefined][] = [
  ['only-two', 'open', ['127.0.0.2/32']],
  ['low', 'open', ['127.0.0.0/30']],
  ['anywhere', 'open', undefined],
  ['narrow', 'office', ['127.0.0.0/30']],
  ['plain', 'office', undefined],
  ['v6', 'open', ['::1/128']],
  ['patched', 'open', ['127.0.0.2/32']],
  ['throttled', 'open', ['127.0.0.2/32']],
];

const ua = (name: string) => ({ 'user-agent': `networks-test/${name}` });

/** client_credentials with the key's id and `secret` (its own by default), from `from`, through `on`. */
function token(name: string, from: string, opts: { secret?: string; headers?: Record<string, string>; on?: TokenServerProcess } = {}): Promise<Answer> {
  const k = keys[name]!;
  return postFrom(from, `${(opts.on ?? server).url}/oauth/token`, json({
    grant_type: 'client_credentials', client_id: k.keyId, client_secret: opts.secret ?? k.secret, audience: k.audience,
  }, opts.headers)).then(keepToken);
}

function keepToken(r: Answer): Answer {
  if (typeof r.body.access_token === 'string') recordSecret(r.body.access_token);
  return r;
}

/** A federated exchange of a GitHub Actions-like token (of `sub`) for office's token, from `from`. */
async function federated(from: string, sub = SUBJECT, headers: Record<string, string> = {}): Promise<Answer> {
  const subjectToken = await github.mint(github.claims({ aud: server.url, sub }));
  recordSecret(subjectToken);
  return postFrom(from, `${server.url}/oauth/token`, form({
    grant_type: EXCHANGE, subject_token: subjectToken, subject_token_type: JWT_TYPE, deployment: `${ns.name}/office`,
  }, headers)).then(keepToken);
}

/** Status, headers but Date, and the body: what a client can observe of an answer. */
function observable(r: Answer) {
  const headers = [...r.headers.entries()].filter(([k]) => k !== 'date' && k !== 'keep-alive' && k !== 'connection');
  return { status: r.status, headers, text: r.text };
}

const refusals = async (kind: string, list: string) =>
  Number(new RegExp(`^apikey_operator_token_network_refusals_total\\{kind="${kind}",list="${list}"\\} (\\d+)$`, 'm').exec(await scrapeMetrics(server))?.[1]);

interface AuditRecord { outcome: string; status: number; reason?: string; detail?: string; keyId?: string; clientAddress: string;
  userAgent?: string; federatedCredential?: string; allowedBy?: { credential?: string; deployment?: string } }
const auditRecords = (): AuditRecord[] => readFileSync(auditPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord);

beforeAll(async () => {
  ca = makeIssuerCa();
  github = await TestOidcIssuer.start(ca);
  ns = await createNamespace('nets');
  identity = await installOperatorIdentity();
  auditPath = join(logDir(), `networks-audit-${process.pid}-${Date.now()}.log`);
  const federation = ['--federation-issuers', github.url];
  const common = { kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, waitReady: false };
  [server, server6, controller] = await Promise.all([
    startTokenServer({ ...common, args: [...federation, '--federation-ca-file', ca.caFile, '--trusted-proxies', '127.0.0.1', '--audit-log-path', auditPath] }),
    startTokenServer({ ...common, host: '::1' }),
    startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, args: federation }),
  ]);
  await createDeployment(ns.name, 'open', { audiences: [OPEN_AUDIENCE] });
  await createDeployment(ns.name, 'office', { audiences: [OFFICE_AUDIENCE], allowedNetworks: ['127.0.0.2/31', '::1/128'] });
  for (const [name, dep, allowedNetworks] of KEYS) {
    await createApiKey(ns.name, name, { deploymentRef: { name: dep }, ...allowedNetworks ? { allowedNetworks } : {} });
  }
  for (const [name, dep] of KEYS) {
    await waitForReady(ns.name, name);
    const creds = credentialsOf((await getSecret(ns.name, name))!);
    recordSecret(creds.secret);
    keys[name] = { ...creds, audience: dep === 'open' ? OPEN_AUDIENCE : OFFICE_AUDIENCE };
  }
  await createFederatedCredential(ns.name, 'gha', {
    deploymentRef: { name: 'office' }, issuer: github.url, subject: SUBJECT, allowedNetworks: ['127.0.0.3/32', '127.0.0.4/32'],
  });
  // Both servers' watches know every key (from an address each key allows), and the credential.
  await waitFor('the keys at the token server', async () => (await token('anywhere', '127.0.0.9')).status === 200
    && (await token('narrow', '127.0.0.3')).status === 200 && (await token('v6', '::1', { on: server6 })).status === 200, 30_000, 100);
  await waitFor('the credential at the token server', async () => (await federated('127.0.0.3')).status === 200, 30_000, 200);
}, 300_000);

afterAll(async () => {
  await Promise.all([server?.stop(), server6?.stop(), controller?.stop()]);
  await identity?.cleanup();
  await ns?.cleanup();
  await github?.stop();
  ca?.cleanup();
});

describe('spec.allowedNetworks at the token endpoint', () => {
  it.each<[key: string, from: string, status: number]>([
    ['only-two', '127.0.0.2', 200],
    ['only-two', '127.0.0.3', 401],
    ['low', '127.0.0.3', 200],
    ['low', '127.0.0.4', 401],
    ['anywhere', '127.0.0.4', 200],
    // office allows 127.0.0.2-3 and ::1; narrow allows 127.0.0.0-3: both, 127.0.0.2-3.
    ['narrow', '127.0.0.2', 200],
    ['narrow', '127.0.0.3', 200],
    ['narrow', '127.0.0.1', 401],
    ['narrow', '127.0.0.5', 401],
    ['plain', '127.0.0.3', 200],
    ['plain', '127.0.0.4', 401],
    ['v6', '127.0.0.2', 401],
  ])('key %s from %s: %i', async (name, from, status) => {
    expect((await token(name, from, { headers: ua(`${name}@${from}`) })).status).toBe(status);
  });

  it('matches IPv6 clients: ::1 against ::1/128, and no IPv4 network lets ::1 in', async () => {
    expect((await token('v6', '::1', { on: server6 })).status).toBe(200);
    expect((await token('plain', '::1', { on: server6 })).status).toBe(200);
    expect((await token('only-two', '::1', { on: server6 })).status).toBe(401);
    expect((await token('narrow', '::1', { on: server6 })).status).toBe(401);
  });

  it('answers a right secret from outside byte for byte as a wrong secret, in the body and with HTTP Basic', async () => {
    const wrong = await token('only-two', '127.0.0.6', { secret: generateSecret() });
    const outside = await token('only-two', '127.0.0.7');
    expect(outside.status).toBe(401);
    expect(observable(outside)).toEqual(observable(wrong));
    const k = keys['only-two']!;
    const viaBasic = (from: string, secret: string) => postFrom(from, `${server.url}/oauth/token`,
      form({ grant_type: 'client_credentials', audience: k.audience }, { authorization: basic(k.keyId, secret) }));
    const wrongBasic = await viaBasic('127.0.0.6', generateSecret());
    const outsideBasic = await viaBasic('127.0.0.7', k.secret);
    expect(outsideBasic.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect(observable(outsideBasic)).toEqual(observable(wrongBasic));
  });

  it('throttles a right secret from outside exactly as wrong secrets: the same answers, 429 at the same attempt', async () => {
    const wrong: ReturnType<typeof observable>[] = [];
    const outside: ReturnType<typeof observable>[] = [];
    for (let i = 0; i < 7; i++) {
      wrong.push(observable(await token('throttled', '127.0.0.8', { secret: generateSecret() })));
      outside.push(observable(await token('throttled', '127.0.0.9')));
    }
    const statuses = outside.map((o) => o.status);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toContain(429);
    // Retry-After counts down by the second: compare the answers without it.
    const strip = (o: ReturnType<typeof observable>) => ({ ...o, headers: o.headers.filter(([k]) => k !== 'retry-after'), text: o.text.replace(/\d+ seconds/, 'N seconds') });
    expect(outside.map(strip)).toEqual(wrong.map(strip));
    // The owner inside the network is not throttled by the thief outside.
    expect((await token('throttled', '127.0.0.2')).status).toBe(200);
  });

  it('takes the client address from X-Forwarded-For through a trusted proxy only; a forged one from an untrusted peer is ignored', async () => {
    const via = (from: string, xff: string) => token('only-two', from, { headers: { ...ua(`xff-${from}-${xff}`), 'x-forwarded-for': xff } });
    expect((await via('127.0.0.1', '127.0.0.2')).status).toBe(200);
    expect((await via('127.0.0.1', '198.51.100.7')).status).toBe(401);
    // The rightmost hop that is not a trusted proxy is the client: a forged leftmost entry is not it.
    expect((await via('127.0.0.1', '127.0.0.2, 198.51.100.8')).status).toBe(401);
    // 127.0.0.5 is no trusted proxy: its X-Forwarded-For is ignored, and it is the client.
    expect((await via('127.0.0.5', '127.0.0.2')).status).toBe(401);
    expect((await token('low', '127.0.0.5', { headers: { 'x-forwarded-for': '127.0.0.3' } })).status).toBe(401);
  });

  it('follows a changed list from the next watch event', async () => {
    expect((await token('patched', '127.0.0.10')).status).toBe(401);
    await adminClient().request('PATCH', apiKeyPath(ns.name, 'patched'), {
      contentType: 'application/merge-patch+json', body: { spec: { allowedNetworks: ['127.0.0.10/32'] } },
    });
    await waitFor('the new list at the token server', async () => (await token('patched', '127.0.0.10')).status === 200, 15_000, 200);
    expect((await token('patched', '127.0.0.2')).status).toBe(401);
  });
});

describe('spec.allowedNetworks of a FederatedCredential', () => {
  it('lets a matching external token in from what both the credential and its Deployment allow, and refuses it elsewhere as an untrusted token', async () => {
    expect((await federated('127.0.0.3', SUBJECT, ua('fed-in'))).status).toBe(200);
    const fromCredentialOutside = await federated('127.0.0.2', SUBJECT, ua('fed-credential-outside'));
    const fromDeploymentOutside = await federated('127.0.0.4', SUBJECT, ua('fed-deployment-outside'));
    const untrusted = await federated('127.0.0.11', 'repo:acme/other:ref:refs/heads/main', ua('fed-untrusted'));
    expect(untrusted.body).toEqual({ error: 'invalid_grant', error_description: FEDERATED_REFUSAL });
    expect(observable(fromCredentialOutside)).toEqual(observable(untrusted));
    expect(observable(fromDeploymentOutside)).toEqual(observable(untrusted));
  });
});

describe('the network refusals metric and the audit log', () => {
  it('counts refusals by kind and refusing list, and the audit records name the client address and the rule', async () => {
    const before = { key: await refusals('apikey', 'credential'), dep: await refusals('apikey', 'deployment'), fed: await refusals('federated', 'credential') };
    expect(Number.isInteger(before.key) && Number.isInteger(before.dep) && Number.isInteger(before.fed)).toBe(true);
    expect((await token('low', '127.0.0.12', { headers: ua('metric-key') })).status).toBe(401);
    expect((await token('plain', '127.0.0.12', { headers: ua('metric-dep') })).status).toBe(401);
    expect((await federated('127.0.0.2', SUBJECT, ua('metric-fed'))).status).toBe(400);
    expect((await token('narrow', '127.0.0.3', { headers: ua('audit-in') })).status).toBe(200);
    expect(await refusals('apikey', 'credential')).toBe(before.key + 1);
    expect(await refusals('apikey', 'deployment')).toBe(before.dep + 1);
    expect(await refusals('federated', 'credential')).toBe(before.fed + 1);

    const byAgent = (name: string) => auditRecords().filter((r) => r.userAgent === `networks-test/${name}`);
    await waitFor('the audit records', () => Promise.resolve(byAgent('audit-in').length === 1 && byAgent('metric-fed').length === 1), 10_000, 100);
    expect(byAgent('metric-key')).toEqual([expect.objectContaining({
      outcome: 'refused', status: 401, reason: 'network_refused', keyId: keys.low!.keyId, clientAddress: '127.0.0.12',
      detail: "the client address is outside the ApiKey's allowedNetworks",
    })]);
    expect(byAgent('metric-dep')).toEqual([expect.objectContaining({
      reason: 'network_refused', clientAddress: '127.0.0.12', detail: "the client address is outside the Deployment's allowedNetworks",
    })]);
    expect(byAgent('metric-fed')).toEqual([expect.objectContaining({
      reason: 'federated_token_refused', clientAddress: '127.0.0.2', detail: "the client address is outside the FederatedCredential's allowedNetworks",
    })]);
    expect(byAgent('audit-in')).toEqual([expect.objectContaining({
      outcome: 'issued', clientAddress: '127.0.0.3', allowedBy: { credential: '127.0.0.0/30', deployment: '127.0.0.2/31' },
    })]);
    expect(byAgent('fed-in')).toEqual([expect.objectContaining({
      outcome: 'issued', federatedCredential: `${ns.name}/gha`, clientAddress: '127.0.0.3', allowedBy: { credential: '127.0.0.3/32', deployment: '127.0.0.2/31' },
    })]);
    // Through the trusted proxy, the record names the forwarded client.
    expect(byAgent('xff-127.0.0.1-127.0.0.2')).toEqual([expect.objectContaining({ outcome: 'issued', clientAddress: '127.0.0.2' })]);
    expect(byAgent('xff-127.0.0.5-127.0.0.2')).toEqual([expect.objectContaining({ outcome: 'refused', clientAddress: '127.0.0.5' })]);
  });
});

describe('the plugin and allowedNetworks', () => {
  const plugin = (args: string[]) => runPlugin(args, { namespace: ns.name });

  it('creates a key with --allowed-networks, shows the list in describe, list -o wide and kubectl get -o wide, and replaces or lifts it with set-networks', async () => {
    const created = await plugin(['create', 'from-plugin', '--deployment', 'open', '--allowed-networks', '127.0.0.13/32, 2001:db8::/48', '-o', 'json']);
    expect(created.code, created.stderr).toBe(0);
    const creds = JSON.parse(created.stdout) as { keyId: string; secret: string };
    recordSecret(creds.secret);
    keys['from-plugin'] = { ...creds, audience: OPEN_AUDIENCE } as Credentials & { audience: string };
    await waitFor('the plugin\'s key at the token server', async () => (await token('from-plugin', '127.0.0.13')).status === 200, 15_000, 200);
    expect((await token('from-plugin', '127.0.0.14')).status).toBe(401);

    const described = await plugin(['describe', 'from-plugin']);
    expect(described.stdout).toMatch(/^Allowed networks:\s+127\.0\.0\.13\/32, 2001:db8::\/48$/m);
    const yaml = await plugin(['describe', 'from-plugin', '-o', 'json']);
    expect((JSON.parse(yaml.stdout) as { apiKey: { spec: { allowedNetworks: string[] } } }).apiKey.spec.allowedNetworks).toEqual(['127.0.0.13/32', '2001:db8::/48']);

    const listed = await plugin(['list', '-o', 'wide']);
    expect(listed.stdout).toMatch(/^from-plugin\s.*\s127\.0\.0\.13\/32,2001:db8::\/48\s*$/m);
    expect(listed.stdout).toMatch(/^anywhere\s.*\s<anywhere>\s*$/m);
    const got = await kubectl(['get', 'apikey', 'from-plugin', '-n', ns.name, '-o', 'wide']);
    expect(got.stdout.split('\n')[0]).toMatch(/\sNETWORKS\s/);
    expect(got.stdout).toContain('["127.0.0.13/32","2001:db8::/48"]');

    const set = await plugin(['set-networks', 'from-plugin', '127.0.0.14/32']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('may now be used only from 127.0.0.14/32');
    await waitFor('the new list at the token server', async () => (await token('from-plugin', '127.0.0.14')).status === 200, 15_000, 200);
    expect((await token('from-plugin', '127.0.0.13')).status).toBe(401);

    const lifted = await plugin(['set-networks', 'from-plugin', '--anywhere', '-o', 'json']);
    expect(JSON.parse(lifted.stdout)).toEqual({ name: 'from-plugin', namespace: ns.name, allowedNetworks: [] });
    expect((await plugin(['describe', 'from-plugin'])).stdout).toMatch(/^Allowed networks:\s+anywhere its Deployment allows$/m);
    await waitFor('no list at the token server', async () => (await token('from-plugin', '127.0.0.15')).status === 200, 15_000, 200);
  });

  it.each<[string[], RegExp]>([
    [['create', 'bad', '--deployment', 'open', '--allowed-networks', '10.1.2.3/16'], /--allowed-networks: 10\.1\.2\.3\/16 is not in canonical form: write 10\.1\.0\.0\/16/],
    [['set-networks', 'patched', 'office-lan'], /set-networks: "office-lan" is not a CIDR/],
    [['set-networks', 'patched'], /needs the CIDRs the key may be used from/],
    [['set-networks', 'patched', '10.0.0.0/8', '--anywhere'], /not both/],
  ])('refuses %j before asking the cluster, saying what to write', async (args, message) => {
    const r = await plugin(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});

describe('the apiserver validation of allowedNetworks', () => {
  it.each<[string, string, RegExp]>([
    ['not a CIDR', 'office-lan', /must be a CIDR such as 10\.20\.0\.0\/16/],
    ['an address without a prefix length', '10.1.2.3', /must be a CIDR/],
    ['a prefix length beyond 32', '10.0.0.0/33', /must be a CIDR/],
    ['host bits set', '10.1.2.3/16', /must be in canonical form, with the host bits zero/],
    ['IPv6 in upper case', '2001:DB8::/32', /must be in canonical form/],
    ['IPv6 not in its shortest form', '2001:db8:0:0::/64', /must be in canonical form/],
  ])('refuses %s on every kind', async (_what, cidr, message) => {
    for (const [kind, spec] of [
      ['ApiKey', { deploymentRef: { name: 'open' } }],
      ['Deployment', {}],
      ['FederatedCredential', { deploymentRef: { name: 'open' }, issuer: github.url, subject: SUBJECT }],
    ] as const) {
      const r = await kubectl(['apply', '-n', ns.name, '-f', '-'], {
        input: JSON.stringify({ apiVersion: 'apikeys.dev/v1', kind, metadata: { name: 'refused' }, spec: { ...spec, allowedNetworks: [cidr] } }),
      });
      expect(r.code, kind).not.toBe(0);
      expect(r.stderr).toContain('spec.allowedNetworks[0]');
      expect(r.stderr).toMatch(message);
    }
  });

  it('refuses more than 64 networks and accepts IPv4 and IPv6 networks in canonical form', async () => {
    const many = Array.from({ length: 65 }, (_, i) => `10.${i}.0.0/16`);
    const over = await kubectl(['apply', '-n', ns.name, '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'apikeys.dev/v1', kind: 'Deployment', metadata: { name: 'many' }, spec: { allowedNetworks: many } }),
    });
    expect(over.stderr).toMatch(/must have at most 64 items/);
    const ok = await kubectl(['apply', '-n', ns.name, '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'apikeys.dev/v1', kind: 'Deployment', metadata: { name: 'fine' },
        spec: { allowedNetworks: [...many.slice(0, 61), '2001:db8::/48', '2001:db8:0:0:1::/127', '0.0.0.0/0'] } }),
    });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
  });
});
