/**
 * A restore from backup keeps every key's id and secret (src/controller/apikey.ts,
 * invariant 5), on the real control plane with the real controller (the chart's
 * identity) and token server: a namespace's Deployments, ApiKeys and Secrets
 * are saved, deleted, and restored the way backup tools restore them (no
 * status, new uids, ownerReferences dropped), in both orders. Then what an
 * attacker would try while a victim is restored: planted Secrets, copies of
 * sealed Secrets, a seal on another secret, a key restored into two namespaces.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEY_ID_ANNOTATION, SEAL_ANNOTATION, SEAL_KEY_SECRET, SIGNING_KEYS_SECRET, type ApiKey, type SecretObject } from '../src/api/index.ts';
import { KubeClient } from '../src/kube/client.ts';
import { secretMatchesHash } from '../src/keys/format.ts';
import type { KubeObject } from '../src/kube/types.ts';
import { down, up } from './cluster/controlplane.ts';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { CRD_FILES } from './support/paths.ts';
import { startOperator, type OperatorIdentity, type RunningOperator } from './support/operator.ts';
import { startController, startTokenServer, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, credentialsOf, deploymentPath, eventsFor, getApiKey, getOrUndefined, getSecret,
  readyOf, secretPath, uniqueAudience, waitForReady,
} from './support/resources.ts';
import { backup, inBackup, restore, wipe, type Backup, type Kind } from './support/restore.ts';
import { issued, requestToken, type KeyCredentials } from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

let operator: RunningOperator;
let identity: OperatorIdentity;
let server: TokenServerProcess;
const namespaces: TestNamespace[] = [];

beforeAll(async () => {
  operator = await startOperator();
  ({ identity, server } = operator);
});

afterAll(async () => {
  await operator?.stop();
  for (const n of namespaces) await n.cleanup();
});

async function namespace(prefix: string): Promise<string> {
  const n = await createNamespace(prefix);
  namespaces.push(n);
  return n.name;
}

/** A key as its users know it: id and secret from its Secret, and a token minted before the backup. */
interface Known extends KeyCredentials { name: string; token: string }

async function known(ns: string, name: string, audience: string): Promise<Known> {
  await waitForReady(ns, name);
  const c = credentialsOf((await getSecret(ns, name))!);
  const creds = { keyId: c.keyId, secret: c.secret, audience };
  return { name, ...creds, token: await issued(server, creds) };
}

/** A namespace with one Deployment `app` and one key `ci`, backed up and then emptied. */
async function oneKeyBackedUp(prefix: string): Promise<{ ns: string; k: Known; saved: Backup }> {
  const ns = await namespace(prefix);
  const aud = uniqueAudience(prefix);
  await createDeployment(ns, 'app', { audiences: [aud] });
  await createApiKey(ns, 'ci', { deploymentRef: { name: 'app' } });
  const k = await known(ns, 'ci', aud);
  const saved = await backup(ns);
  await wipe(ns);
  return { ns, k, saved };
}

const KEYS_PER_DEPLOYMENT = 10;

/**
 * Two Deployments of ten keys each; among them a key rotated within its grace
 * period (its previous secret still accepted) and one that expires in two days.
 */
async function populate(ns: string): Promise<{ keys: Known[]; previous: KeyCredentials; audiences: Record<string, string> }> {
  const audiences = { web: uniqueAudience('restore-web'), batch: uniqueAudience('restore-batch') };
  for (const [dep, aud] of Object.entries(audiences)) await createDeployment(ns, dep, { audiences: [aud] });
  const names: [string, string][] = [];
  for (const dep of Object.keys(audiences)) {
    for (let i = 0; i < KEYS_PER_DEPLOYMENT - 1; i++) {
      names.push([dep, `${dep}-${i}`]);
      await createApiKey(ns, `${dep}-${i}`, { deploymentRef: { name: dep } });
    }
  }
  await createApiKey(ns, 'rotated', { deploymentRef: { name: 'web' }, rotation: { gracePeriod: '1h' } });
  await createApiKey(ns, 'expiring', { deploymentRef: { name: 'batch' }, expiresAt: new Date(Date.now() + 2 * 86_400_000).toISOString() });
  names.push(['web', 'rotated'], ['batch', 'expiring']);
  const keys = await Promise.all(names.map(([dep, name]) => known(ns, name, audiences[dep as keyof typeof audiences])));

  // The rotation: the secret before it stays valid for an hour.
  const before = keys.find((k) => k.name === 'rotated')!;
  await adminClient().mergePatch(apiKeyPath(ns, 'rotated'), { metadata: { annotations: { 'apikeys.dev/rotate': 'r1' } } });
  await waitFor('rotated', async () => (await getApiKey(ns, 'rotated'))?.status?.previousSecretHash !== undefined);
  const rotated = await known(ns, 'rotated', before.audience);
  expect(rotated.secret).not.toBe(before.secret);
  keys[keys.indexOf(before)] = rotated;
  await issued(server, before);
  return { keys, previous: before, audiences };
}

/** Waits until every key is Ready with its old key id; the ms it took. */
async function allReadyAgain(ns: string, keys: Known[], since: number, timeoutMs = 120_000): Promise<number> {
  await waitFor(`${keys.length} restored keys Ready with their old ids`, async () => {
    const all = await Promise.all(keys.map((k) => getApiKey(ns, k.name)));
    return all.every((ak, i) => readyOf(ak)?.status === 'True' && ak?.status?.keyId === keys[i]!.keyId);
  }, timeoutMs, 100);
  return Date.now() - since;
}

const jwks = () => createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`));

/** Figures for the report: restore order -> ms to all Ready. */
const measured: Record<string, number[]> = {};
afterAll(() => {
  if (Object.keys(measured).length) process.stderr.write(`[restore] time to all Ready: ${JSON.stringify(measured)}\n`);
});

describe('a restore from backup', () => {
  it.each<[string, Kind[]]>([
    ['Secrets before ApiKeys (Velero\'s default order)', ['secrets', 'deployments', 'apikeys']],
    ['ApiKeys before Secrets', ['deployments', 'apikeys', 'secrets']],
  ])('keeps every key\'s id and secret, restored %s: tokens before and after verify, GC still deletes them', async (label, order) => {
    const ns = await namespace('restore');
    const { keys, previous } = await populate(ns);
    const saved = await backup(ns);
    expect(saved.objects.apikeys).toHaveLength(2 * KEYS_PER_DEPLOYMENT);
    for (const s of saved.objects.secrets) expect(s.metadata?.annotations?.[SEAL_ANNOTATION]).toMatch(/^v1\./);

    await wipe(ns);
    const t0 = Date.now();
    // A tool that restores the ApiKeys first leaves a moment before the Secrets: the keys must wait, not re-key.
    const { skipped } = await restore(saved, { order, between: () => new Promise((r) => setTimeout(r, 1500)) });
    expect(skipped).toEqual([]);
    const restoredAt = Date.now();
    const ms = await allReadyAgain(ns, keys, t0);
    measured[`${label}, ${keys.length} keys: from the restore's start, from its last object`] = [ms, Date.now() - restoredAt];

    const dep = (name: string) => getOrUndefined<KubeObject>(deploymentPath(ns, name));
    for (const k of keys) {
      const ak = (await getApiKey(ns, k.name))!;
      const secret = (await getSecret(ns, k.name))!;
      const c = credentialsOf(secret);
      expect(c.keyId).toBe(k.keyId);
      expect(c.secret).toBe(k.secret);
      expect(secretMatchesHash(c.secret, ak.status!.secretHash)).toBe(true);
      // New uids all the way down: the Secret is the new ApiKey's, the ApiKey the new Deployment's.
      expect(secret.metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: 'ApiKey', uid: ak.metadata.uid, controller: true })]);
      expect(ak.metadata.ownerReferences![0]!.uid).toBe((await dep(ak.spec.deploymentRef.name))!.metadata!.uid);
      expect(ak.metadata.uid).not.toBe(inBackup(saved, 'apikeys', k.name).metadata!.uid);
      // The old secret mints tokens; a token minted before the backup still verifies against the JWKS.
      await issued(server, k);
      const { payload } = await jwtVerify(k.token, jwks(), { audience: k.audience });
      expect(payload.client_id ?? payload.sub).toBeDefined();
    }
    // What a restore does not bring back: the previous secret of a rotation in grace.
    expect((await requestToken(server, previous)).status).toBe(401);
    const expiring = (await getApiKey(ns, 'expiring'))!;
    expect(expiring.status!.conditions!.find((c) => c.type === 'Expiring')?.status).toBe('True');
    const restoredEvents = (await eventsFor(ns, 'web-0')).filter((e) => e.reason === 'Restored');
    expect(restoredEvents[0]?.type).toBe('Normal');

    // The garbage collector still deletes a Deployment's keys and their Secrets with it.
    await adminClient().delete(deploymentPath(ns, 'web'));
    await waitFor('web\'s keys and Secrets deleted', async () => {
      for (const k of keys.filter((x) => x.name.startsWith('web-') || x.name === 'rotated')) {
        if (await getApiKey(ns, k.name) || await getSecret(ns, k.name)) return false;
      }
      return true;
    }, 60_000, 200);
    expect(await getApiKey(ns, 'batch-0')).toBeDefined();
  });

  it('with ownerReferences kept, naming the old uids, loses the keys to the garbage collector, never to new credentials', async () => {
    const { ns, k, saved } = await oneKeyBackedUp('restore-oldrefs');
    await restore(saved, { order: ['secrets', 'deployments', 'apikeys'], ownerReferences: 'old' });
    // Kubernetes deletes an object whose owners' uids are gone, whatever any controller does: a restore must
    // drop ownerReferences (Velero's default). The controller takes no part: it neither adopts nor re-keys.
    const secretsSeen = new Set<string>();
    await waitFor('the garbage collector deletes the restored key and Secret', async () => {
      const [ak, secret] = [await getApiKey(ns, 'ci'), await getSecret(ns, 'ci')];
      if (secret) secretsSeen.add(credentialsOf(secret).secret);
      expect(ak?.status?.keyId).toBeUndefined();
      return !ak && !secret;
    }, 60_000, 20);
    expect([...secretsSeen].filter((x) => x !== k.secret)).toEqual([]);
    expect((await requestToken(server, k)).status).toBe(401);
  });

  it('waits, Restoring, for a Secret that is not restored, and the old secret opens nothing meanwhile', async () => {
    const { ns, k, saved } = await oneKeyBackedUp('restore-nosecret');
    await restore(saved, { order: ['deployments', 'apikeys'] });
    const waiting = await waitFor('Restoring', async () => {
      const ak = await getApiKey(ns, 'ci');
      return readyOf(ak)?.reason === 'Restoring' ? ak : undefined;
    });
    expect(readyOf(waiting)?.status).toBe('Unknown');
    expect(readyOf(waiting)?.message).toContain(k.keyId);
    expect(await getSecret(ns, 'ci')).toBeUndefined();
    // The old secret is refused meanwhile: no status vouches for it.
    expect((await requestToken(server, k)).status).toBe(401);
  });
});

/** A Secret with chosen credentials and a seal copied from another, as a tenant who may create Secrets could make it. */
function forged(ns: string, name: string, from: SecretObject, change: { keyId?: string; secret?: string; owner?: ApiKey }): SecretObject {
  const b64 = (v: string) => Buffer.from(v, 'utf8').toString('base64');
  return {
    apiVersion: 'v1', kind: 'Secret', type: from.type,
    metadata: {
      name, namespace: ns, labels: from.metadata?.labels, annotations: { [SEAL_ANNOTATION]: from.metadata!.annotations![SEAL_ANNOTATION]! },
      ownerReferences: change.owner
        ? [{ apiVersion: change.owner.apiVersion, kind: 'ApiKey', name: change.owner.metadata.name!, uid: change.owner.metadata.uid!, controller: true }]
        : undefined,
    },
    data: { ...from.data, ...(change.keyId ? { API_KEY_ID: b64(change.keyId) } : {}), ...(change.secret ? { API_KEY_SECRET: b64(change.secret) } : {}) },
  };
}

const PLANTED = 'aks_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM';

/** Waits until the key settles on a reason other than Restoring; it must never have the victim's id. */
async function settled(ns: string, name: string, reason: string): Promise<ApiKey> {
  return waitFor(`${ns}/${name} ${reason}`, async () => {
    const ak = await getApiKey(ns, name);
    return readyOf(ak)?.reason === reason ? ak : undefined;
  }, 60_000);
}

describe('an attacker, while a victim is restored', () => {
  let victimNs: string;
  let victim: Known;
  let victim2: Known;
  let saved: Backup;
  let sealed: SecretObject;

  beforeAll(async () => {
    victimNs = await namespace('victim');
    const aud = uniqueAudience('restore-victim');
    await createDeployment(victimNs, 'app', { audiences: [aud] });
    await createApiKey(victimNs, 'ci', { deploymentRef: { name: 'app' } });
    await createApiKey(victimNs, 'ci2', { deploymentRef: { name: 'app' } });
    victim = await known(victimNs, 'ci', aud);
    victim2 = await known(victimNs, 'ci2', aud);
    saved = await backup(victimNs);
    sealed = inBackup<SecretObject>(saved, 'secrets', 'ci');
    await wipe(victimNs);
  });

  it('gains nothing from Secrets planted with the victim\'s key id and seal, in the victim\'s namespace and another; the victim gets its key back', async () => {
    // Another namespace: an ApiKey of the victim's name with the victim's key-id annotation (public), and a
    // Secret carrying the victim's key id, the victim's seal, and a secret of the attacker's choosing.
    const evilNs = await namespace('evil');
    await createDeployment(evilNs, 'app', { audiences: [uniqueAudience('restore-evil')] });
    await adminClient().create(secretPath(evilNs), forged(evilNs, 'ci', sealed, { secret: PLANTED }));
    await createApiKey(evilNs, 'ci', { deploymentRef: { name: 'app' } }, { [KEY_ID_ANNOTATION]: victim.keyId });
    // The victim's own namespace: the attacker's own ApiKey, its Secret claiming the victim's id, sealed with the victim's seal.
    await createDeployment(victimNs, 'mine', { audiences: [uniqueAudience('restore-mine')] });
    const mine = await createApiKey(victimNs, 'mine', { deploymentRef: { name: 'mine' } }, { [KEY_ID_ANNOTATION]: victim.keyId });
    await adminClient().create(secretPath(victimNs), forged(victimNs, 'mine', sealed, { secret: PLANTED, owner: mine }));
    // And a Secret planted at the victim's second key's name before its Secret is restored.
    await adminClient().create(secretPath(victimNs), forged(victimNs, 'ci2', inBackup<SecretObject>(saved, 'secrets', 'ci2'), { secret: PLANTED }));

    const { skipped } = await restore(saved, { order: ['secrets', 'deployments', 'apikeys'] });
    expect(skipped).toEqual(['secrets/ci2']);

    // The victim's first key comes back whole, and works.
    await allReadyAgain(victimNs, [victim], Date.now());
    expect(credentialsOf((await getSecret(victimNs, 'ci'))!).secret).toBe(victim.secret);
    await issued(server, victim);
    // The attacker's keys: none holds the victim's id; theirs is new (the planted Secret it controlled was
    // replaced) or a conflict on a Secret it does not control, left untouched.
    const evil = await settled(evilNs, 'ci', 'SecretConflict');
    expect(evil.status?.keyId).toBeUndefined();
    const own = await waitForReady(victimNs, 'mine');
    expect(own.status!.keyId).not.toBe(victim.keyId);
    expect(credentialsOf((await getSecret(victimNs, 'mine'))!).keyId).toBe(own.status!.keyId);
    // The victim's second key is not given the planted secret: it stands in SecretConflict, the planted Secret
    // untouched, and its old id is claimed by nobody.
    const v2 = await settled(victimNs, 'ci2', 'SecretConflict');
    expect(v2.status?.keyId).toBeUndefined();
    // The planted secret opens nothing, under any of these ids.
    for (const keyId of [victim.keyId, victim2.keyId, own.status!.keyId!]) {
      expect((await requestToken(server, { keyId, secret: PLANTED, audience: victim.audience })).status).toBe(401);
    }
    await issued(server, victim);
  });

  it('does not let a copy of the victim\'s sealed Secret, renamed for another ApiKey, take the victim\'s id', async () => {
    // A copy with the real secret, as someone who may read the Secret could make: the seal names another ApiKey.
    await createApiKey(victimNs, 'copy', { deploymentRef: { name: 'app' } }, { [KEY_ID_ANNOTATION]: victim.keyId });
    await adminClient().create(secretPath(victimNs), forged(victimNs, 'copy', sealed, {}));
    const copy = await settled(victimNs, 'copy', 'SecretConflict');
    expect(copy.status?.keyId).toBeUndefined();
    const v = (await getApiKey(victimNs, 'ci'))!;
    expect(v.status!.keyId).toBe(victim.keyId);
    expect(readyOf(v)?.status).toBe('True');
  });

  it('gives a key id restored into two namespaces to the one it was sealed for, whichever is restored first', async () => {
    const { ns, k, saved: b } = await oneKeyBackedUp('restore-src');
    // The copy (Velero's --namespace-mappings) is restored first, and is older: it still gets nothing.
    const other = await namespace('restore-copy');
    await restore(b, { order: ['secrets', 'deployments', 'apikeys'], namespace: other });
    const copy = await settled(other, 'ci', 'SecretConflict');
    expect(copy.status?.keyId).toBeUndefined();
    await restore(b, { order: ['secrets', 'deployments', 'apikeys'] });
    await allReadyAgain(ns, [k], Date.now());
    expect((await getApiKey(other, 'ci'))!.status?.keyId).toBeUndefined();
    // The copy's Deployment, restored first, holds the custom audience (the first claimant of an audience keeps
    // it, api/claims.ts): the original has its key back but no token for that audience until the copy goes.
    await waitFor('original AudienceConflict', async () => readyOf(await getOrUndefined(deploymentPath(ns, 'app')))?.reason === 'AudienceConflict');
    expect((await requestToken(server, k)).status).not.toBe(200);
    await adminClient().delete(deploymentPath(other, 'app'));
    await issued(server, k);
  });
});

describe('a restore into a fresh cluster', () => {
  let dir: string | undefined;
  const started: RunningProcess[] = [];
  afterAll(async () => {
    for (const p of started) await p.stop();
    if (dir) {
      await down(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps every key\'s id and secret, and tokens minted in the old cluster verify, when the operator\'s seal-key and signing-keys Secrets are restored first', async () => {
    const ns = await namespace('restore-dr');
    const aud = uniqueAudience('restore-dr');
    await createDeployment(ns, 'app', { audiences: [aud] });
    for (const name of ['ci', 'deploy', 'nightly']) await createApiKey(ns, name, { deploymentRef: { name: 'app' } });
    const keys = await Promise.all(['ci', 'deploy', 'nightly'].map((name) => known(ns, name, aud)));
    const tenants = await backup(ns);
    const operator = await backup(identity.namespace);

    // A new control plane: nothing of the old one but the backup.
    dir = mkdtempSync(join(tmpdir(), 'apikey-operator-restore-'));
    const fresh = await up(dir, { crds: CRD_FILES, log: () => undefined });
    const kc = new KubeConfig();
    kc.loadFromFile(fresh.kubeconfig);
    const client = new KubeClient(kc);
    for (const name of [identity.namespace, ns]) await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    const { skipped } = await restore(operator, {
      order: ['secrets'], client, only: (o) => [SEAL_KEY_SECRET, SIGNING_KEYS_SECRET].includes(o.metadata!.name!),
    });
    expect(skipped).toEqual([]);
    expect((await client.get<SecretObject>(`/api/v1/namespaces/${identity.namespace}/secrets/${SEAL_KEY_SECRET}`)).data).toBeDefined();

    started.push(await startController({ kubeconfig: fresh.kubeconfig, operatorNamespace: identity.namespace }));
    const freshServer = await startTokenServer({ kubeconfig: fresh.kubeconfig, operatorNamespace: identity.namespace });
    started.push(freshServer);
    const t0 = Date.now();
    await restore(tenants, { order: ['secrets', 'deployments', 'apikeys'], client });
    await waitFor('every key Ready in the fresh cluster with its old id', async () => {
      const all = await Promise.all(keys.map((k) => client.get<ApiKey>(apiKeyPath(ns, k.name))));
      return all.every((ak, i) => readyOf(ak)?.status === 'True' && ak.status?.keyId === keys[i]!.keyId);
    }, 120_000, 100);
    measured[`fresh cluster, ${keys.length} keys: from the restore's start`] = [Date.now() - t0];
    const freshJwks = createRemoteJWKSet(new URL(`${freshServer.url}/.well-known/jwks.json`));
    for (const k of keys) {
      await issued(freshServer, k);
      const { payload } = await jwtVerify(k.token, freshJwks, { audience: k.audience });
      expect(payload.aud).toBe(k.audience);
    }
  });
});
