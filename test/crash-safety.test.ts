/**
 * A crash between any two writes of a reconcile loses nothing. The real
 * reconciler runs in-process against the real apiserver; its writer "crashes"
 * (stops dead) after the k-th write, for every k; then a fresh reconciler,
 * reading only what the apiserver has, finishes the job. At the crash point
 * the Secret's secret must verify (current hash, or previous in grace)
 * whenever the status names a hash, and a Secret no status names belongs to
 * a key that is not Ready; afterwards no secret that ever verified has
 * changed, and one that never did has been replaced.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKey } from '../src/api/index.ts';
import { ApiKeyReconciler, type ApiKeyReads } from '../src/controller/apikey.ts';
import { isConflict } from '../src/kube/client.ts';
import { apiKeyWrites } from '../src/controller/writes.ts';
import { secretMatchesHash } from '../src/keys/format.ts';
import { createNamespace } from './support/cluster.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, credentialsOf, deploymentPath, getApiKey, getOrUndefined,
  getSecret, readyOf, secretPath,
} from './support/resources.ts';

class Crash extends Error {}

let ns: Awaited<ReturnType<typeof createNamespace>>;
beforeAll(async () => {
  ns = await createNamespace('crash');
  await createDeployment(ns.name, 'dep', { audiences: ['aud'] });
});
afterAll(async () => { await ns.cleanup(); });

const reads: ApiKeyReads = {
  apiKey: () => { throw new Error('replaced per pass'); },
  deployment: () => undefined,
  apiKeysWithKeyId: () => [],
  cachedSecret: () => undefined,
  liveSecret: (n, name) => getSecret(n, name),
};

/**
 * A reconciler over a snapshot of the apiserver (or over `stale`, a version
 * of the key the apiserver has moved past), whose writer crashes after
 * `crashAfter` writes.
 */
async function pass(name: string, crashAfter = Infinity, stale?: ApiKey): Promise<number> {
  const ak = stale ?? await getApiKey(ns.name, name);
  const dep = await getOrUndefined<never>(deploymentPath(ns.name, 'dep'));
  let writes = 0;
  const count = () => { if (++writes > crashAfter) throw new Crash(`crash before write ${writes}`); };
  // The controller's own writes, stopped dead before the (crashAfter+1)-th.
  const w = apiKeyWrites(adminClient(), { emit() { /* events are not state */ } }, { beforeWrite: count });
  const r = new ApiKeyReconciler({ ...reads, apiKey: () => ak, deployment: () => dep }, w, { tokenUrl: 'http://t', defaultAudiences: ['aud'] });
  try {
    await r.reconcile(ns.name, name);
  } catch (err) {
    if (!(err instanceof Crash) && !(stale && isConflict(err))) throw err;
  }
  return writes;
}

/**
 * src/controller/apikey.ts's invariant 1: whatever the Secret holds verifies
 * whenever the status names a hash, or there is nothing to use yet: no
 * Secret, or a new key's Secret that no status names yet, of a key that is
 * not Ready (`unvouched`).
 */
async function secretVerifies(name: string): Promise<string | undefined> {
  const s = await getSecret(ns.name, name);
  if (!s) return undefined;
  const { secret } = credentialsOf(s);
  const st = (await getApiKey(ns.name, name))!.status ?? {};
  if (st.secretHash === undefined) {
    expect(st.conditions?.find((c) => c.type === 'Ready')?.status).not.toBe('True');
    unvouched.add(secret);
    return undefined;
  }
  const inGrace = st.previousSecretValidUntil !== undefined && Date.parse(st.previousSecretValidUntil) > Date.now();
  expect(secretMatchesHash(secret, st.secretHash) || (inGrace && secretMatchesHash(secret, st.previousSecretHash))).toBe(true);
  return secret;
}

/** Secrets seen in a Secret while no status named them: they never verified anywhere. */
const unvouched = new Set<string>();

async function converge(name: string): Promise<void> {
  for (let i = 0; i < 5; i++) if ((await pass(name)) === 0) return;
  throw new Error('did not converge in 5 passes');
}

describe('a crash between any two writes', () => {
  it.each([1, 2])('of a first creation (after write %i) loses nothing: a Secret once vouched for is kept, the next pass finishes', async (k) => {
    const name = `create-${k}`;
    await createApiKey(ns.name, name, { deploymentRef: { name: 'dep' } });
    expect(await pass(name, k)).toBe(k + 1);
    const atCrash = await secretVerifies(name);
    const atCrashSecret = await getSecret(ns.name, name);
    const atCrashStatus = (await getApiKey(ns.name, name))!.status;
    // Ready=True only ever with the Secret in place.
    if (!atCrashSecret) expect(atCrashStatus?.conditions?.find((c) => c.type === 'Ready')?.status).not.toBe('True');
    await converge(name);
    const final = await secretVerifies(name);
    const st = (await getApiKey(ns.name, name))!.status!;
    expect(secretMatchesHash(final!, st.secretHash)).toBe(true);
    if (atCrash) expect(final).toBe(atCrash);
    // A secret that never verified (the Secret's create landed, its status did not) is not adopted.
    if (atCrashSecret && !atCrash) expect(final).not.toBe(credentialsOf(atCrashSecret).secret);
    if (atCrashStatus?.keyId) expect(st.keyId).toBe(atCrashStatus.keyId);
  });

  it('of a first creation takes three writes and an event: owner, Secret (create), status (Ready)', async () => {
    await createApiKey(ns.name, 'create-count', { deploymentRef: { name: 'dep' } });
    expect(await pass('create-count')).toBe(3);
    expect(readyOf(await getApiKey(ns.name, 'create-count'))?.status).toBe('True');
    expect(await secretVerifies('create-count')).toBeDefined();
  });

  it('of a first creation, at the Secret\'s create, leaves a Secret no status names, which the next pass replaces', async () => {
    await createApiKey(ns.name, 'create-unvouched', { deploymentRef: { name: 'dep' } });
    expect(await pass('create-unvouched', 2)).toBe(3);
    expect(await secretVerifies('create-unvouched')).toBeUndefined();
    const planted = credentialsOf((await getSecret(ns.name, 'create-unvouched'))!).secret;
    expect(unvouched.has(planted)).toBe(true);
    // The next pass's create finds our Secret (these passes have no cache), which it then replaces on the
    // status-first path: the status (Issuing, a new hash), the Secret, Ready.
    expect(await pass('create-unvouched')).toBe(4);
    const final = (await secretVerifies('create-unvouched'))!;
    expect(final).not.toBe(planted);
    expect(readyOf(await getApiKey(ns.name, 'create-unvouched'))?.status).toBe('True');
  });

  it('of a first creation is never undone by a pass that decided on the key as it was before it', async () => {
    const before = await createApiKey(ns.name, 'create-stale', { deploymentRef: { name: 'dep' } });
    const withOwner = await adminClient().mergePatch<ApiKey>(apiKeyPath(ns.name, 'create-stale'), { metadata: { ownerReferences: [
      { apiVersion: 'apikeys.dev/v1', kind: 'Deployment', name: 'dep', uid: (await getOrUndefined<{ metadata: { uid: string } }>(deploymentPath(ns.name, 'dep')))!.metadata.uid }] } });
    expect(before.metadata.resourceVersion).not.toBe(withOwner.metadata.resourceVersion);
    await converge('create-stale');
    const done = (await secretVerifies('create-stale'))!;
    // A pass on the version with the ownerReference but no status (a stale cache): its create finds the
    // Secret, and its status write, first on the path that replaces a Secret, fails on the resourceVersion.
    expect(await pass('create-stale', Infinity, withOwner)).toBe(2);
    expect(await secretVerifies('create-stale')).toBe(done);
    expect(readyOf(await getApiKey(ns.name, 'create-stale'))?.status).toBe('True');
  });

  it.each([1])('of a rotation (after write %i) loses nothing: the old secret stays valid in grace and the new one verifies', async (k) => {
    const name = `rotate-${k}`;
    await createApiKey(ns.name, name, { deploymentRef: { name: 'dep' }, rotation: { gracePeriod: '1h' } });
    await converge(name);
    const old = (await secretVerifies(name))!;
    await adminClient().mergePatch(apiKeyPath(ns.name, name), { metadata: { annotations: { 'apikeys.dev/rotate': 'now' } } });
    expect(await pass(name, k)).toBe(k + 1);
    expect(await secretVerifies(name)).toBe(old); // status written, Secret not yet: old secret is the previous one
    await converge(name);
    const st = (await getApiKey(ns.name, name))!.status!;
    const fresh = (await secretVerifies(name))!;
    expect(fresh).not.toBe(old);
    expect(secretMatchesHash(fresh, st.secretHash)).toBe(true);
    expect(secretMatchesHash(old, st.previousSecretHash)).toBe(true);
    expect(Date.parse(st.previousSecretValidUntil!)).toBeGreaterThan(Date.now() + 3500_000);
    expect(st.rotateAnnotation).toBe('now');
  });

  it('of a rotation takes two writes: status, then Secret', async () => {
    await createApiKey(ns.name, 'rotate-count', { deploymentRef: { name: 'dep' } });
    await converge('rotate-count');
    await adminClient().mergePatch(apiKeyPath(ns.name, 'rotate-count'), { metadata: { annotations: { 'apikeys.dev/rotate': 'x' } } });
    expect(await pass('rotate-count')).toBe(2);
  });

  it('of the re-creation of a deleted Secret (after write 1) leaves no Secret that does not verify', async () => {
    await createApiKey(ns.name, 'recreate', { deploymentRef: { name: 'dep' } });
    await converge('recreate');
    await adminClient().delete(secretPath(ns.name, 'recreate'));
    expect(await pass('recreate', 1)).toBe(2);
    expect(await getSecret(ns.name, 'recreate')).toBeUndefined();
    await converge('recreate');
    const st = (await getApiKey(ns.name, 'recreate'))!.status!;
    expect(secretMatchesHash((await secretVerifies('recreate'))!, st.secretHash)).toBe(true);
  });

  it('is never mistaken for a hand-made change: an unchanged key writes nothing on later passes', async () => {
    expect(await pass('create-1')).toBe(0);
    expect(await pass('create-2')).toBe(0);
    expect(await pass('rotate-1')).toBe(0);
  });

});
