import { describe, expect, it } from 'vitest';
import { REVEAL_TTL_MS, sameToken, SessionStore } from './sessions.ts';

describe('sessions', () => {
  it('forgets a session once it has expired', () => {
    let now = 1000;
    const store = new SessionStore({ ttlMs: 60_000, now: () => now });
    const s = store.create();
    expect(store.get(s.id)).toBe(s);
    now += 60_000;
    expect(store.get(s.id)).toBeUndefined();
  });

  it('gives a signed-in session a new id and ends it no later than the credential', () => {
    let now = 0;
    const store = new SessionStore({ ttlMs: 3_600_000, now: () => now });
    const before = store.create();
    const after = store.signIn(before, 'alice', {}, 600_000);
    expect(after.id).not.toBe(before.id);
    expect(store.get(before.id)).toBeUndefined();
    expect(after.expiresAt).toBe(600_000);
    now = 600_000;
    expect(store.get(after.id)).toBeUndefined();
  });

  it('shows a held secret exactly once', () => {
    const store = new SessionStore({ ttlMs: 60_000 });
    const s = store.create();
    const id = store.hold(s, {
      kind: 'created', namespace: 'ns', deployment: 'd', name: 'k', keyId: 'ak_x', secret: 'aks_y', secretName: 'k', audience: 'a', tokenUrl: 'u',
    });
    expect(store.take(s, id)?.secret).toBe('aks_y');
    expect(store.take(s, id)).toBeUndefined();
  });

  it('forgets a held secret that was not shown in time', () => {
    let now = 0;
    const store = new SessionStore({ ttlMs: 3_600_000, now: () => now });
    const s = store.create();
    const id = store.hold(s, {
      kind: 'rotated', namespace: 'ns', deployment: 'd', name: 'k', keyId: 'ak_x', secret: 'aks_y', secretName: 'k', audience: 'a', tokenUrl: 'u',
    });
    now = REVEAL_TTL_MS;
    expect(store.take(s, id)).toBeUndefined();
    expect(s.reveals.size).toBe(0);
  });

  it.each([
    ['the same token', 'abc', 'abc', true],
    ['another token', 'abd', 'abc', false],
    ['a shorter token', 'ab', 'abc', false],
    ['no token', undefined, 'abc', false],
  ])('compares CSRF tokens: %s', (_, a, b, same) => {
    expect(sameToken(a, b)).toBe(same);
  });

  it('bounds one person\'s sessions: a new one ends that person\'s oldest, and nobody else\'s', () => {
    const store = new SessionStore({ ttlMs: 3_600_000, maxPerPerson: 2, maxSessions: 100 });
    const bob = store.signIn(undefined, 'bob', {});
    const a1 = store.signIn(undefined, 'alice', {});
    const a2 = store.signIn(undefined, 'alice', {});
    const a3 = store.signIn(undefined, 'alice', {});
    expect([a1, a2, a3, bob].map((s) => store.get(s.id) !== undefined)).toEqual([false, true, true, true]);
  });

  it('bounds sessions in all: a new one ends the oldest of anyone\'s, never refusing the new', () => {
    const store = new SessionStore({ ttlMs: 3_600_000, maxPerPerson: 5, maxSessions: 3 });
    const made = ['a', 'b', 'c', 'd'].map((n) => store.signIn(undefined, n, {}));
    expect(store.size).toBe(3);
    expect(made.map((s) => store.get(s.id) !== undefined)).toEqual([false, true, true, true]);
  });
});
