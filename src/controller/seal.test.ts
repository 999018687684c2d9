import { describe, expect, it } from 'vitest';
import { SEAL_KEY_SECRET, SEAL_KEY_SECRET_TYPE, type SecretObject } from '../api/index.ts';
import { KubeError, type KubeClient } from '../kube/client.ts';
import { newSealKeySecret, SealKeys, sealerOf, sealKeyIdAt, sealKeysOf, type SealSubject } from './seal.ts';

const K1 = Buffer.alloc(32, 1);
const K2 = Buffer.alloc(32, 2);
const subject: SealSubject = { namespace: 'team-a', name: 'ci', keyId: 'ak_aaaaaaaaaaaaaaaaaaaaaaaaaa', secretHash: 'sha256:abc' };

describe('the seal of a credentials Secret', () => {
  const sealer = sealerOf(new Map([['20260101T000000Z', K1]]));
  const seal = sealer.seal(subject);

  it('verifies for the namespace, ApiKey name, key id and secret hash it was made for', () => {
    expect(seal).toMatch(/^v1\.20260101T000000Z\.[A-Za-z0-9_-]{43}$/);
    expect(sealer.verify(seal, subject)).toBe(true);
  });

  it.each([
    ['another namespace', { namespace: 'team-b' }],
    ['another ApiKey name', { name: 'deploy' }],
    ['another key id', { keyId: 'ak_bbbbbbbbbbbbbbbbbbbbbbbbbb' }],
    ['another secret', { secretHash: 'sha256:abd' }],
    // Length-prefixed fields: moving a separator between two fields is another subject.
    ['fields run together differently', { namespace: 'team-a\nci', name: '' }],
  ])('does not verify for %s', (_what, change) => {
    expect(sealer.verify(seal, { ...subject, ...change })).toBe(false);
  });

  it.each([
    ['no seal', undefined],
    ['an empty seal', ''],
    ['another version', seal.replace(/^v1\./, 'v2.')],
    ['an unknown key', seal.replace('20260101T000000Z', '20270101T000000Z')],
    ['a truncated tag', seal.slice(0, -2)],
    ['an extra part', `${seal}.x`],
    ['an oversized value', `${seal}${'A'.repeat(200)}`],
    ['garbage', 'v1..'],
  ])('refuses %s without throwing', (_what, bad) => {
    expect(sealer.verify(bad, subject)).toBe(false);
  });

  it('does not verify under another key', () => {
    expect(sealerOf(new Map([['20260101T000000Z', K2]])).verify(seal, subject)).toBe(false);
  });

  it('seals with the newest key and verifies seals of every key it holds (rotation)', () => {
    const both = sealerOf(new Map([['20260101T000000Z', K1], ['20270101T000000Z', K2]]));
    expect(both.seal(subject)).toMatch(/^v1\.20270101T000000Z\./);
    expect(both.verify(seal, subject)).toBe(true);
    expect(both.verify(both.seal(subject), subject)).toBe(true);
  });

  it('ignores keys shorter than 32 bytes or with ids it does not accept, and refuses a set with no usable key', () => {
    const s = sealerOf(new Map([['20260101T000000Z', K1], ['20990101T000000Z', Buffer.alloc(16, 3)], ['bad id!', K2]]));
    expect(s.seal(subject)).toMatch(/^v1\.20260101T000000Z\./);
    expect(() => sealerOf(new Map([['short', Buffer.alloc(31)]]))).toThrow(/no usable seal key/);
  });

  it('names a new key by its UTC creation time, so that ids sort by age', () => {
    expect(sealKeyIdAt(new Date('2026-12-07T08:15:00.123Z'))).toBe('20261207T081500Z');
    const s = newSealKeySecret('op', new Date('2026-12-07T08:15:00Z'));
    expect(s.type).toBe(SEAL_KEY_SECRET_TYPE);
    const keys = sealKeysOf(s);
    expect([...keys.keys()]).toEqual(['20261207T081500Z']);
    expect(keys.get('20261207T081500Z')!.length).toBe(32);
  });
});

/** A client that holds the seal-key Secret (or none), and records creates. */
function fakeClient(initial: SecretObject | undefined, opts: { raceOnCreate?: SecretObject; failGet?: boolean } = {}) {
  let stored = initial;
  const creates: SecretObject[] = [];
  const client = {
    get: () => {
      if (opts.failGet) return Promise.reject(new KubeError(503, 'ServiceUnavailable', 'down'));
      return stored ? Promise.resolve(stored) : Promise.reject(new KubeError(404, 'NotFound', 'not found'));
    },
    create: (_p: string, body: SecretObject) => {
      creates.push(body);
      if (opts.raceOnCreate) {
        stored = opts.raceOnCreate;
        return Promise.reject(new KubeError(409, 'AlreadyExists', 'exists'));
      }
      stored = body;
      return Promise.resolve(body);
    },
  } as unknown as KubeClient;
  return { client, creates, set: (s: SecretObject | undefined) => { stored = s; }, failGet: (v: boolean) => { opts.failGet = v; } };
}

const keySecret = (id: string, key: Buffer): SecretObject => ({
  apiVersion: 'v1', kind: 'Secret', metadata: { name: SEAL_KEY_SECRET, namespace: 'op' }, data: { [id]: key.toString('base64') },
});

describe('SealKeys', () => {
  it('creates the Secret the first time when there is none, after asking beforeWrite, and keeps using it', async () => {
    const f = fakeClient(undefined);
    let asked = 0;
    const keys = new SealKeys({ client: f.client, namespace: 'op', beforeWrite: () => { asked++; } });
    const a = await keys.get();
    expect(f.creates).toHaveLength(1);
    expect(asked).toBe(1);
    expect(f.creates[0]!.metadata!.name).toBe(SEAL_KEY_SECRET);
    const b = await keys.get();
    expect(b.seal(subject)).toBe(a.seal(subject));
    expect(f.creates).toHaveLength(1);
  });

  it('does not create the Secret on a replica that does not lead (beforeWrite throws)', async () => {
    const f = fakeClient(undefined);
    const keys = new SealKeys({ client: f.client, namespace: 'op', beforeWrite: () => { throw new Error('not leader'); } });
    await expect(keys.get()).rejects.toThrow('not leader');
    expect(f.creates).toHaveLength(0);
  });

  it('uses the Secret another replica created first (AlreadyExists)', async () => {
    const theirs = keySecret('20260101T000000Z', K1);
    const f = fakeClient(undefined, { raceOnCreate: theirs });
    const keys = new SealKeys({ client: f.client, namespace: 'op' });
    const s = await keys.get();
    expect(s.seal(subject)).toBe(sealerOf(new Map([['20260101T000000Z', K1]])).seal(subject));
  });

  it('takes up a key added to the Secret (rotation) at its next read, and keeps its keys when a read fails', async () => {
    let now = new Date('2026-12-07T00:00:00Z');
    const f = fakeClient(keySecret('20260101T000000Z', K1));
    const keys = new SealKeys({ client: f.client, namespace: 'op', refreshMs: 1000, now: () => now });
    const old = (await keys.get()).seal(subject);
    f.set({ ...keySecret('20260101T000000Z', K1), data: { '20260101T000000Z': K1.toString('base64'), '20270101T000000Z': K2.toString('base64') } });
    now = new Date(now.getTime() + 2000);
    const rotated = await keys.get();
    expect(rotated.seal(subject)).toMatch(/^v1\.20270101T000000Z\./);
    expect(rotated.verify(old, subject)).toBe(true);
    f.failGet(true);
    now = new Date(now.getTime() + 2000);
    expect((await keys.get()).seal(subject)).toBe(rotated.seal(subject));
  });
});
