import { describe, expect, it } from 'vitest';
import { SIGNING_KEYS_SECRET, type SecretObject } from '../api/index.ts';
import { KubeError, type KubeClient } from '../kube/client.ts';
import { DEFAULT_ROTATION, planSigningKeys, SIGNING_KEYS_DATA_KEY, signingKeySetOf, type SigningKeySet } from '../shared/signing-keys.ts';
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
