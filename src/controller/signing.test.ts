import { describe, expect, it } from 'vitest';
import { SIGNING_KEYS_SECRET, type SecretObject } from '../api/index.ts';
import { KubeError, type KubeClient } from '../kube/client.ts';
import {
  DEFAULT_ROTATION, inProcessKeyMaterial, planSigningKeys, SIGNING_KEYS_DATA_KEY, signingKeySetOf, type KeyGenerator, type SigningKeySet,
} from '../shared/signing-keys.ts';
import { createLogger } from '../shared/log.ts';
import { reconcileSigningKeys, SigningKeyMemory } from './signing.ts';

const H = 3600_000;
const policy = { ...DEFAULT_ROTATION, rotateEveryMs: 10 * H, publishLeadMs: H, clockSkewMs: 0 };

const secretOf = (data: string, rv = '1'): SecretObject => ({
  apiVersion: 'v1', kind: 'Secret', metadata: { name: SIGNING_KEYS_SECRET, namespace: 'op', resourceVersion: rv },
  data: { [SIGNING_KEYS_DATA_KEY]: Buffer.from(data).toString('base64') },
});

/** A client that holds one Secret (or none) and records the writes. */
function fakeClient(initial: SecretObject | undefined) {
  const writes: SecretObject[] = [];
  let stored = initial;
  const client = {
    get: () => (stored ? Promise.resolve(stored) : Promise.reject(new KubeError(404, 'NotFound', 'not found'))),
    replace: (_p: string, body: SecretObject) => { writes.push(body); stored = body; return Promise.resolve(body); },
    create: (_p: string, body: SecretObject) => { writes.push(body); stored = body; return Promise.resolve(body); },
  } as unknown as KubeClient;
  return { client, writes, cached: () => stored };
}

function run(initial: SecretObject | undefined, memory: SigningKeyMemory, now: number) {
  const f = fakeClient(initial);
  const events: { type: 'rotated' | 'invalid'; note: string }[] = [];
  const done = reconcileSigningKeys({
    client: f.client, namespace: 'op', policy, log: createLogger({ level: 'silent' }), memory, cached: () => initial,
    onRotated: (note) => events.push({ type: 'rotated', note }), onInvalid: (note) => events.push({ type: 'invalid', note }),
  }, now);
  return { done, writes: f.writes, events };
}

const setOf = (s: SecretObject) => signingKeySetOf(s)!;
const kids = (set: SigningKeySet) => set.keys.map((k) => k.kid);

describe('the signing keys Secret, when it goes bad', () => {
  it('is restored from the good keys the controller remembers when it is malformed: no key dropped, no new key', async () => {
    const now = Date.now();
    const good = await planSigningKeys(undefined, policy, now);
    const memory = new SigningKeyMemory();
    memory.observe(secretOf(JSON.stringify(good)));
    const bad = JSON.stringify({ ...good, keys: [{ ...good.keys[0], kid: 'forged' }] });
    const r = run(secretOf(bad, '2'), memory, now + 60_000);
    await r.done;
    expect(r.writes).toHaveLength(1);
    expect(kids(setOf(r.writes[0]!))).toEqual(kids(good));
    expect(r.writes[0]!.metadata?.resourceVersion).toBe('2');
    expect(r.events).toEqual([{ type: 'invalid', note: expect.stringContaining('restored the 1 good keys') as string }]);
    expect(memory.problem).toBeUndefined();
  });

  it('is written again, with the same keys, when it is deleted', async () => {
    const now = Date.now();
    const good = await planSigningKeys(undefined, policy, now);
    const memory = new SigningKeyMemory();
    memory.remember(good);
    const r = run(undefined, memory, now + 60_000);
    await r.done;
    expect(kids(setOf(r.writes[0]!))).toEqual(kids(good));
    expect(r.events[0]!.type).toBe('invalid');
  });

  it('is left alone when malformed and the controller has no good copy: token servers keep their keys; a Warning says so', async () => {
    const memory = new SigningKeyMemory();
    const r = run(secretOf('{"version":1,"keys":[{"kid":"x"}]}'), memory, Date.now());
    expect(await r.done).toBe(30_000);
    expect(r.writes).toEqual([]);
    expect(r.events).toEqual([{ type: 'invalid', note: expect.stringContaining('nothing was changed') as string }]);
    expect(memory.problem).toMatch(/^malformed: signing keys: key x: kid is not an RFC 7638/);
  });

  it('still starts with a first key on a new installation', async () => {
    const r = run(undefined, new SigningKeyMemory(), Date.now());
    await r.done;
    expect(setOf(r.writes[0]!).keys).toHaveLength(1);
    expect(r.events[0]!.type).toBe('rotated');
  });
});

describe('keys held outside the Secret (a PKCS#11 token)', () => {
  /** A token-like source: public halves only in the records, and the kids it was asked to destroy. */
  const tokenSource = () => {
    const retired: string[] = [];
    let n = 0;
    const source: KeyGenerator = {
      kind: 'pkcs11',
      generate: async (alg) => {
        const { privateJwk: _private, ...material } = await inProcessKeyMaterial(alg);
        const id = (++n).toString(16).padStart(32, '0');
        return { ...material, pkcs11: { label: `apikey-operator-${id}`, id } };
      },
      retire: (record) => { retired.push(record.kid); return Promise.resolve(2); },
    };
    return { source, retired };
  };
  const reconcile = (secret: SecretObject, source: KeyGenerator, now: number, fail = false) => {
    const f = fakeClient(secret);
    const client = fail ? { ...f.client, replace: () => Promise.reject(new KubeError(409, 'Conflict', 'conflict')) } as unknown as KubeClient : f.client;
    return reconcileSigningKeys({
      client, namespace: 'op', policy, source, log: createLogger({ level: 'silent' }), memory: new SigningKeyMemory(), cached: () => secret,
      onRotated: () => undefined, onInvalid: () => undefined,
    }, now);
  };

  it('destroys the private half of a key the write dropped (expired), after the write, and no other key', async () => {
    const { source, retired } = tokenSource();
    const t0 = Date.now();
    const first = await planSigningKeys(undefined, policy, t0, source);
    const rotated = await planSigningKeys(first, policy, t0 + 9 * H, source);
    expect(rotated.keys).toHaveLength(2);
    // The first key expires 24 h after its successor took over (10 h): a moment later the plan drops it.
    await reconcile(secretOf(JSON.stringify(rotated)), source, t0 + 34 * H + 1000);
    expect(retired).toEqual([first.keys[0]!.kid]);
  });

  it('destroys nothing when the write fails: the key is still in the Secret the token servers read', async () => {
    const { source, retired } = tokenSource();
    const t0 = Date.now();
    const rotated = await planSigningKeys(await planSigningKeys(undefined, policy, t0, source), policy, t0 + 9 * H, source);
    await expect(reconcile(secretOf(JSON.stringify(rotated)), source, t0 + 34 * H + 1000, true)).rejects.toThrow(/conflict/);
    expect(retired).toEqual([]);
  });

  it('destroys nothing while the keys are only rotated: the retired key stays until it expires', async () => {
    const { source, retired } = tokenSource();
    const t0 = Date.now();
    await reconcile(secretOf(JSON.stringify(await planSigningKeys(undefined, policy, t0, source))), source, t0 + 9 * H);
    expect(retired).toEqual([]);
  });
});
