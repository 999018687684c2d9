/**
 * A crash between any two writes of a reconcile loses nothing. The real
 * reconciler runs in-process against the real apiserver; its writer "crashes"
 * (stops dead) after the k-th write, for every k; then a fresh reconciler,
 * reading only what the apiserver has, finishes the job. At the crash point
 * the Secret's secret must verify (current hash, or previous in grace), and
 * afterwards no secret that a client could have read has silently changed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyReconciler, type ApiKeyReads } from '../src/controller/apikey.ts';
import { apiKeyWrites } from '../src/controller/writes.ts';
import { secretMatchesHash } from '../src/keys/format.ts';
import { createNamespace } from './support/cluster.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, credentialsOf, deploymentPath, getApiKey, getOrUndefined,
  getSecret, secretPath,
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

/** A reconciler over a snapshot of the apiserver, whose writer crashes after `crashAfter` writes. */
async function pass(name: string, crashAfter = Infinity): Promise<number> {
  const ak = await getApiKey(ns.name, name);
  const dep = await getOrUndefined<never>(deploymentPath(ns.name, 'dep'));
  let writes = 0;
  const count = () => { if (++writes > crashAfter) throw new Crash(`crash before write ${writes}`); };
  // The controller's own writes, stopped dead before the (crashAfter+1)-th.
  const w = apiKeyWrites(adminClient(), { emit() { /* events are not state */ } }, { beforeWrite: count });
  const r = new ApiKeyReconciler({ ...reads, apiKey: () => ak, deployment: () => dep }, w, { tokenUrl: 'http://t', defaultAudiences: ['aud'] });
  try {
    await r.reconcile(ns.name, name);
  } catch (err) {
    if (!(err instanceof Crash)) throw err;
  }
  return writes;
}

/** src/controller/apikey.ts's invariant 1: whatever the Secret holds verifies, or there is nothing to use yet. */
async function secretVerifies(name: string): Promise<string | undefined> {
  const s = await getSecret(ns.name, name);
  if (!s) return undefined;
  const { secret } = credentialsOf(s);
  const st = (await getApiKey(ns.name, name))!.status ?? {};
  const inGrace = st.previousSecretValidUntil !== undefined && Date.parse(st.previousSecretValidUntil) > Date.now();
  expect(secretMatchesHash(secret, st.secretHash) || (inGrace && secretMatchesHash(secret, st.previousSecretHash))).toBe(true);
  return secret;
}

async function converge(name: string): Promise<void> {
  for (let i = 0; i < 5; i++) if ((await pass(name)) === 0) return;
  throw new Error('did not converge in 5 passes');
}

describe('a crash between any two writes', () => {
  it.each([1, 2, 3])('of a first creation (after write %i) loses nothing: a Secret once written is kept, the next pass finishes', async (k) => {
    const name = `create-${k}`;
    await createApiKey(ns.name, name, { deploymentRef: { name: 'dep' } });
    expect(await pass(name, k)).toBe(k + 1);
    const atCrash = await secretVerifies(name);
    const atCrashStatus = (await getApiKey(ns.name, name))!.status;
    // Ready=True only ever with the Secret in place.
    if (!atCrash) expect(atCrashStatus?.conditions?.find((c) => c.type === 'Ready')?.status).not.toBe('True');
    await converge(name);
    const final = await secretVerifies(name);
    const st = (await getApiKey(ns.name, name))!.status!;
    expect(secretMatchesHash(final!, st.secretHash)).toBe(true);
    if (atCrash) expect(final).toBe(atCrash);
    if (atCrashStatus?.keyId) expect(st.keyId).toBe(atCrashStatus.keyId);
  });

  it('of a first creation takes four writes: owner, status (Issuing), Secret, status (Ready)', async () => {
    await createApiKey(ns.name, 'create-count', { deploymentRef: { name: 'dep' } });
    expect(await pass('create-count')).toBe(4);
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
    expect(await pass('rotate-1')).toBe(0);
  });

});
