import { describe, expect, it } from 'vitest';
import {
  MAX_SESSION_KEYS, newSessionKey, nextSessionKeyChange, parseSessionKeysFile, planSessionKeys, sealingKey, serializeSessionKeys, type SessionKeyPolicy,
} from './session-keys.ts';

const H = 3600_000;
const policy: SessionKeyPolicy = { rotateEveryMs: 24 * H, publishLeadMs: 10 * 60_000, lifetimeMs: 8 * H };

describe('the console session keys plan', () => {
  it('makes the first key, keeps it until it is rotateEvery old, then puts a new one first', () => {
    const first = planSessionKeys([], policy, 0);
    expect(first).toMatchObject({ made: true, retired: 0 });
    expect(first.keys).toHaveLength(1);
    expect(planSessionKeys(first.keys, policy, 24 * H - 1)).toMatchObject({ made: false, keys: first.keys });
    const next = planSessionKeys(first.keys, policy, 24 * H);
    expect(next.made).toBe(true);
    expect(next.keys.map((k) => k.id)).toEqual([next.keys[0]!.id, first.keys[0]!.id]);
    expect(next.keys[0]!.id).not.toBe(first.keys[0]!.id);
  });

  it('seals with a new key only once it has been published for the lead, and with the newest on a fresh install', () => {
    const old = newSessionKey(0);
    const fresh = newSessionKey(24 * H);
    expect(sealingKey([fresh, old], 24 * H + policy.publishLeadMs - 1, policy.publishLeadMs)).toBe(old);
    expect(sealingKey([fresh, old], 24 * H + policy.publishLeadMs, policy.publishLeadMs)).toBe(fresh);
    expect(sealingKey([fresh], 24 * H, policy.publishLeadMs)).toBe(fresh);
    expect(sealingKey([], 0, 0)).toBeUndefined();
  });

  it('retires a key exactly when the last session it could have sealed has expired: lifetime after the next key took over', () => {
    const old = newSessionKey(0);
    const fresh = newSessionKey(24 * H);
    const retireAt = 24 * H + policy.publishLeadMs + policy.lifetimeMs;
    expect(planSessionKeys([fresh, old], policy, retireAt - 1).keys).toEqual([fresh, old]);
    expect(planSessionKeys([fresh, old], policy, retireAt)).toMatchObject({ keys: [fresh], retired: 1 });
    expect(nextSessionKeyChange([fresh, old], policy)).toBe(retireAt);
    expect(nextSessionKeyChange([fresh], policy)).toBe(48 * H);
  });

  it('reads back what it writes, policy included, and drops anything it did not write', () => {
    const keys = [newSessionKey(2), newSessionKey(1)];
    const parsed = parseSessionKeysFile(serializeSessionKeys(keys, policy));
    expect(parsed).toEqual({ keys, publishLeadMs: policy.publishLeadMs, lifetimeMs: policy.lifetimeMs });
    const good = { id: 'abcdefgh', key: Buffer.alloc(32, 1).toString('base64'), created: 5 };
    for (const text of [undefined, '', 'not json', 'null', '[]', '{"keys":{}}', '{"keys":[null,1,"x"]}']) expect(parseSessionKeysFile(text).keys).toEqual([]);
    const bad = [
      { ...good, id: 'short' }, { ...good, id: 'has space' }, { ...good, key: Buffer.alloc(16).toString('base64') }, { ...good, created: 'now' },
      { ...good, created: Number.NaN }, { id: 'abcdefgh' },
    ];
    expect(parseSessionKeysFile(JSON.stringify({ keys: [...bad, good, { ...good, key: Buffer.alloc(32, 2).toString('base64') }] })).keys)
      .toEqual([{ id: good.id, key: Buffer.alloc(32, 1), created: 5 }]);
    // A negative or missing duration is the default; more than MAX_SESSION_KEYS keys is a file not of ours: the rest is ignored.
    const many = Array.from({ length: MAX_SESSION_KEYS + 5 }, (_, i) => ({ ...good, id: `key${String(i).padStart(5, '0')}`, created: 100 - i }));
    const f = parseSessionKeysFile(JSON.stringify({ keys: many, publishLeadMs: -1 }));
    expect(f.keys).toHaveLength(MAX_SESSION_KEYS);
    expect(f.publishLeadMs).toBe(10 * 60_000);
  });
});
