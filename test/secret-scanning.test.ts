/**
 * Leaked secrets revoke themselves, on the real control plane with the controller and the token
 * server as real processes under the chart's ServiceAccounts and admission policies: a partner
 * shaped like GitHub's secret scanning (test/support/scanning-partner.ts: P-256 keys published over
 * loopback HTTPS, reports signed over their raw bytes) reports secrets to
 * POST /secret-scanning/github. A true positive makes its key Compromised (no more tokens, its
 * tokens dead at /authz and introspection, a Warning event naming where it leaked); rotation
 * recovers; replays, forgeries and malformed reports change nothing. `kubectl apikey revoke` takes
 * the same action as a person, as a real process.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPROMISED_ANNOTATION } from '../src/api/compromise.ts';
import type { ApiKey } from '../src/api/index.ts';
import { generateSecret, hashSecret } from '../src/keys/format.ts';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { startOperator, type OperatorIdentity, type RunningOperator } from './support/operator.ts';
import { runPlugin } from './support/plugin.ts';
import {
  MAIN, recordSecret, startProcess, startTokenServer, type TokenServerProcess,
} from './support/processes.ts';
import {
  createApiKey, createDeployment, credentialsOf, eventsFor, getApiKey, getSecret, readyOf, waitForReady, type Credentials,
} from './support/resources.ts';
import { partnerKey, ScanningPartner, signedHeaders } from './support/scanning-partner.ts';
import { authz, introspect, issued, post, requestToken, scrapeMetrics, type KeyCredentials } from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

const LEAK_URL = 'https://github.com/acme/airflow-dags/blob/0123abc/.env';

let partner: ScanningPartner;
let ns: TestNamespace;
let operator: RunningOperator;
let identity: OperatorIdentity;
let server: TokenServerProcess;
let observer: Credentials;
let bystander: Credentials;

const endpoint = () => `${server.url}/secret-scanning/github`;
const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');

async function newKey(name: string, spec: Partial<ApiKey['spec']> = {}): Promise<Credentials> {
  await createApiKey(ns.name, name, { deploymentRef: { name: 'airflow' }, ...spec });
  await waitForReady(ns.name, name);
  return credentialsOf((await getSecret(ns.name, name))!);
}

/** Sends `report` (body and headers) to the endpoint; the answer's status and JSON. */
async function send(report: { body: string; headers: Record<string, string> }) {
  return post(endpoint(), { headers: report.headers, body: report.body });
}

const compromisedOf = (name: string) => waitFor(`ApiKey ${name} Compromised`, async () => {
  const ak = await getApiKey(ns.name, name);
  return readyOf(ak)?.reason === 'Compromised' ? ak : undefined;
}, 20_000, 100);

const refusedClientCredentials = (key: KeyCredentials) => waitFor(`the token server refusing ${key.keyId}`, async () => {
  const r = await requestToken(server, key);
  return r.status === 401 ? r : undefined;
}, 10_000, 50);

beforeAll(async () => {
  partner = await ScanningPartner.start();
  ns = await createNamespace('scan');
  operator = await startOperator({ tokenServerArgs: ['--secret-scanning-keys-url', partner.keysUrl, '--secret-scanning-ca-file', partner.caFile] });
  ({ identity, server } = operator);
  await createDeployment(ns.name, 'airflow');
  observer = await newKey('observer', { permissions: ['read'] });
  bystander = await newKey('bystander');
}, 300_000);

afterAll(async () => {
  await operator?.stop();
  await ns?.cleanup();
  await partner?.stop();
});

describe('a signed report of a leaked secret', () => {
  let leaky: Credentials;
  let earlier: string;
  let report: { body: string; headers: Record<string, string> };

  beforeAll(async () => {
    leaky = await newKey('leaky');
    earlier = await issued(server, leaky);
    recordSecret(earlier);
  });

  it('labels each match and revokes the key whose secret it is', async () => {
    const nobodys = generateSecret();
    const badChecksum = `${leaky.secret.slice(0, -1)}${leaky.secret.endsWith('0') ? '1' : '0'}`;
    recordSecret(nobodys);
    recordSecret(badChecksum);
    report = partner.report([
      { token: leaky.secret, url: LEAK_URL },
      { token: nobodys, url: LEAK_URL },
      { token: badChecksum },
      { token: 'not-a-secret-at-all', type: 'other_type' },
    ]);
    const r = await send(report);
    expect(r.status, r.text).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(JSON.parse(r.text)).toEqual([
      { token_hash: sha256hex(leaky.secret), token_type: 'apikeys_dev_api_key_secret', label: 'true_positive' },
      { token_hash: sha256hex(nobodys), token_type: 'apikeys_dev_api_key_secret', label: 'false_positive' },
      { token_hash: sha256hex(badChecksum), token_type: 'apikeys_dev_api_key_secret', label: 'false_positive' },
      { token_hash: sha256hex('not-a-secret-at-all'), token_type: 'other_type', label: 'false_positive' },
    ]);
    expect(r.text).not.toContain(leaky.secret);
  });

  it('stops the key issuing tokens, and kills the token it issued before at /authz and introspection', async () => {
    const refused = await refusedClientCredentials(leaky);
    expect(refused.body.error).toBe('invalid_client');
    expect((await authz(server, earlier)).status).toBe(401);
    expect(await introspect(server, earlier, { ...observer, audience: observer.audience })).toEqual({ active: false });
    // Another key of the same Deployment is untouched.
    expect((await requestToken(server, bystander)).status).toBe(200);
  });

  it('sets Ready=False with reason Compromised, records the report, and says where it leaked in a Warning event', async () => {
    const ak = await compromisedOf('leaky');
    expect(ak.status?.compromise).toMatchObject({ secretHash: hashSecret(leaky.secret), source: 'secret-scanning', url: LEAK_URL });
    expect(ak.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True');
    expect(readyOf(ak)?.message).toContain(LEAK_URL);
    const event = await waitFor('the Compromised event', async () =>
      (await eventsFor(ns.name, 'leaky')).find((e) => e.reason === 'Compromised'));
    expect(event.type).toBe('Warning');
    expect(event.note).toContain(LEAK_URL);
    expect(event.note).not.toContain(leaky.secret);
  });

  it('is harmless sent again: the same labels, the mark unchanged, one event', async () => {
    const before = (await getApiKey(ns.name, 'leaky'))!;
    const r = await send(report);
    expect(r.status).toBe(200);
    expect((JSON.parse(r.text) as { label: string }[]).map((m) => m.label)).toEqual(['true_positive', 'false_positive', 'false_positive', 'false_positive']);
    const after = (await getApiKey(ns.name, 'leaky'))!;
    expect(after.metadata.annotations?.[COMPROMISED_ANNOTATION]).toBe(before.metadata.annotations?.[COMPROMISED_ANNOTATION]);
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect((await eventsFor(ns.name, 'leaky')).filter((e) => e.reason === 'Compromised')).toHaveLength(1);
  });

  it('is recovered from by a rotation: a new secret works, the leaked one and its tokens stay dead, and the old report replayed revokes nothing', async () => {
    const r = await runPlugin(['rotate', 'leaky'], { namespace: ns.name });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('The previous secret no longer works');
    const ak = await waitForReady(ns.name, 'leaky');
    expect(ak.status?.previousSecretHash).toBeUndefined();
    const rotated = credentialsOf((await getSecret(ns.name, 'leaky'))!);
    expect(rotated.secret).not.toBe(leaky.secret);
    const fresh = await issued(server, rotated);
    recordSecret(fresh);
    expect((await requestToken(server, leaky)).status).toBe(401);
    expect((await authz(server, earlier)).status).toBe(401);
    // The old report again: still ours (true_positive), but it names a secret the key no longer has.
    const replay = await send(report);
    expect(replay.status).toBe(200);
    expect((JSON.parse(replay.text) as { label: string }[])[0]!.label).toBe('true_positive');
    await new Promise((done) => setTimeout(done, 1000));
    expect(readyOf(await getApiKey(ns.name, 'leaky'))?.status).toBe('True');
    expect((await requestToken(server, rotated)).status).toBe(200);
    expect((await authz(server, fresh)).status).toBe(200);
    expect((await getApiKey(ns.name, 'leaky'))?.status?.compromise?.secretHash).toBe(hashSecret(leaky.secret));
  });

  it('is counted in the metrics by label', async () => {
    const metrics = await scrapeMetrics(server);
    expect(metrics).toMatch(/apikey_operator_secret_scanning_matches_total\{label="true_positive"\} [3-9]/);
    expect(metrics).toMatch(/apikey_operator_secret_scanning_matches_total\{label="false_positive"\} \d/);
  });
});

describe('a report that is not properly signed or not a report', () => {
  const bystanderReport = () => partner.report([{ token: bystander.secret, url: LEAK_URL }]);

  it.each([
    ['without the signature headers', () => ({ body: bystanderReport().body, headers: { 'content-type': 'application/json' } }), 401],
    ['signed by a key the partner never published, under its current key id', () => {
      const { body } = bystanderReport();
      return { body, headers: { ...signedHeaders(body, partnerKey()), 'github-public-key-identifier': partner.current.id } };
    }, 401],
    ['whose body was changed after signing', () => {
      const { headers } = bystanderReport();
      return { body: JSON.stringify([{ token: bystander.secret, type: 'x', url: 'https://evil.example/' }]), headers };
    }, 401],
    ['with a signature that is not base64', () => ({ body: bystanderReport().body, headers: { ...bystanderReport().headers, 'github-public-key-signature': '%%%' } }), 401],
    ['that is not JSON, though signed', () => {
      const body = 'token=aks_';
      return { body, headers: signedHeaders(body, partner.current) };
    }, 400],
    ['that is a JSON object, not an array', () => {
      const body = JSON.stringify({ token: bystander.secret });
      return { body, headers: signedHeaders(body, partner.current) };
    }, 400],
    ['with more than 100 matches', () => {
      const body = JSON.stringify(Array.from({ length: 101 }, () => ({ token: bystander.secret, type: 't' })));
      return { body, headers: signedHeaders(body, partner.current) };
    }, 400],
    ['with a match whose token is not a string', () => {
      const body = JSON.stringify([{ token: 42, type: 't' }]);
      return { body, headers: signedHeaders(body, partner.current) };
    }, 400],
  ])('is refused %s, and revokes nothing', async (_what, make, status) => {
    const r = await send(make());
    expect(r.status, r.text).toBe(status);
    expect(typeof r.body.error).toBe('string');
    expect(r.text).not.toContain(bystander.secret);
    expect((await requestToken(server, bystander)).status).toBe(200);
    expect((await getApiKey(ns.name, 'bystander'))?.metadata.annotations?.[COMPROMISED_ANNOTATION]).toBeUndefined();
  });

  it('is refused larger than its budget (413), in another content type (415) or another method (405)', async () => {
    const huge = JSON.stringify([{ token: bystander.secret, type: 'x'.repeat(140 * 1024) }]);
    expect((await send({ body: huge, headers: signedHeaders(huge, partner.current) })).status).toBe(413);
    const { body, headers } = bystanderReport();
    expect((await send({ body, headers: { ...headers, 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await fetch(endpoint())).status).toBe(405);
    expect((await requestToken(server, bystander)).status).toBe(200);
  });

  it('follows the partner\'s key rotation, and refetches for unknown key ids at most once per cooldown', async () => {
    const next = partnerKey();
    partner.published = [next, ...partner.published];
    const nobodys = generateSecret();
    const signedByNext = () => {
      const body = JSON.stringify([{ token: nobodys, type: 't' }]);
      return { body, headers: signedHeaders(body, next) };
    };
    // The new key id is unknown to the cache: refetched (within the cooldown of the last fetch, a moment later).
    const accepted = await waitFor('a report signed with the partner\'s new key', async () => {
      const r = await send(signedByNext());
      return r.status === 200 ? r : undefined;
    }, 20_000, 500);
    expect(JSON.parse(accepted.text)).toEqual([{ token_hash: sha256hex(nobodys), token_type: 't', label: 'false_positive' }]);
    const fetches = partner.fetches;
    const stranger = partnerKey();
    for (let i = 0; i < 20; i++) {
      const body = JSON.stringify([{ token: nobodys, type: 't' }]);
      const r = await send({ body, headers: signedHeaders(body, stranger) });
      expect(r.status).toBe(401);
      expect(r.body.error_description).toContain('names no known public key');
    }
    expect(partner.fetches - fetches).toBeLessThanOrEqual(1);
  });
});

describe('kubectl apikey revoke', () => {
  it('revokes a key as a person, with a reason, and rotate recovers it', async () => {
    const key = await newKey('pasted');
    const token = await issued(server, key);
    recordSecret(token);
    const r = await runPlugin(['revoke', 'pasted', '--reason', 'pasted into #general\u001b[2J'], { namespace: ns.name });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('ApiKey "pasted" revoked');
    expect(r.stdout).toContain(`kubectl apikey rotate pasted -n ${ns.name}`);
    const ak = (await getApiKey(ns.name, 'pasted'))!;
    expect(readyOf(ak)?.reason).toBe('Compromised');
    expect(ak.status?.compromise).toMatchObject({ source: 'kubectl', reason: 'pasted into #general [2J', secretHash: hashSecret(key.secret) });
    expect((await refusedClientCredentials(key)).body.error).toBe('invalid_client');
    expect((await authz(server, token)).status).toBe(401);
    const described = await runPlugin(['describe', 'pasted'], { namespace: ns.name });
    expect(described.stdout).toMatch(/Compromised: +REVOKED: the current secret was reported leaked by kubectl apikey revoke at \S+ \(pasted into #general \[2J\)/);
    // Again: nothing more to do.
    const again = await runPlugin(['revoke', 'pasted'], { namespace: ns.name });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('already revoked');
    const rotate = await runPlugin(['rotate', 'pasted'], { namespace: ns.name });
    expect(rotate.code, rotate.stderr).toBe(0);
    const rotated = credentialsOf((await getSecret(ns.name, 'pasted'))!);
    recordSecret(await issued(server, rotated));
    expect((await requestToken(server, key)).status).toBe(401);
  });

  it('refuses a reason longer than 256 characters and a key that does not exist, changing nothing', async () => {
    const long = await runPlugin(['revoke', 'bystander', '--reason', 'x'.repeat(257)], { namespace: ns.name });
    expect(long.code).not.toBe(0);
    expect(long.stderr).toContain('--reason: at most 256 characters');
    const missing = await runPlugin(['revoke', 'nosuchkey'], { namespace: ns.name });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('nosuchkey');
    expect((await requestToken(server, bystander)).status).toBe(200);
  });
});

describe('turning the endpoint on', () => {
  it.each([
    [['--secret-scanning-keys-url', 'http://127.0.0.1/keys'], 'error: --secret-scanning-keys-url: must be an https URL'],
    [['--secret-scanning-keys-url', 'not a url'], 'error: --secret-scanning-keys-url: not a URL'],
    [['--secret-scanning-ca-file', '/dev/null'], 'error: --secret-scanning-ca-file: /dev/null holds no PEM certificate'],
    [['--secret-scanning-keys-url', 'https://127.0.0.1/keys', '--secret-scanning-ca-file', '/nonexistent/ca.crt'],
      'error: --secret-scanning-ca-file: cannot read /nonexistent/ca.crt (ENOENT)'],
  ])('refuses to start the token server with %j, saying why', async (args, why) => {
    const p = startProcess('token-server', [MAIN, 'token-server', '--kubeconfig', identity.tokenServerKubeconfig, ...args]);
    expect(await p.exited).toBe(2);
    expect(p.logs()).toContain(why);
  });

  it('is off without --secret-scanning-keys-url: the path is 404 and a signed report changes nothing', async () => {
    const off = await startTokenServer({ kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace });
    try {
      const { body, headers } = partner.report([{ token: bystander.secret }]);
      const r = await post(`${off.url}/secret-scanning/github`, { headers, body });
      expect(r.status).toBe(404);
      expect((await requestToken(off, bystander)).status).toBe(200);
    } finally {
      await off.stop();
    }
  });
});
