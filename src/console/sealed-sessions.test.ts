import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newSessionKey, serializeSessionKeys } from '../shared/session-keys.ts';
import { FileKeyring, type Keyring } from './keyring.ts';
import { SealedSessionStore, SessionTooLarge } from './sealed-sessions.ts';
import { Sealer } from './sealed.ts';
import type { Reveal } from './sessions.ts';

const MIN = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'sealed-sessions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup(o: { keyring?: Keyring; ttlMs?: number; idleMs?: number } = {}) {
  let now = 1_000_000;
  const clock = { now: () => now, advance: (ms: number) => { now += ms; } };
  const signedOut = new Map<string, { iat: number; exp: number }>();
  const signOuts = {
    synced: true,
    isSignedOut: (sid: string) => signedOut.has(sid),
    record: (sid: string, iat: number, exp: number) => { signedOut.set(sid, { iat, exp }); return Promise.resolve(); },
  };
  const sealer = new Sealer({ ...o.keyring ? { keyring: o.keyring } : {}, now: clock.now });
  const store = new SealedSessionStore({ sealer, signOuts, ttlMs: o.ttlMs ?? 8 * 60 * MIN, idleMs: o.idleMs ?? 60 * MIN, now: clock.now });
  return { store, clock, signOuts, signedOut, sealer };
}

const reveal: Reveal = {
  kind: 'created', namespace: 'ns', deployment: 'd', name: 'k', keyId: 'ak_x', secret: 'aks_secret', secretName: 's', audience: 'a', tokenUrl: 'https://t',
};

describe('sessions sealed in their cookies', () => {
  it('opens a session from its cookie alone, in another store with the same keys (another replica, or after a restart)', () => {
    const a = setup();
    const s = a.store.signIn(undefined, 'alice', { idToken: 'x.y.z' });
    const cookie = a.store.cookieValue(s);
    const b = new SealedSessionStore({
      sealer: new Sealer({ keyring: a.sealer.keyring, now: a.clock.now }), signOuts: a.signOuts, ttlMs: MIN * 60, idleMs: MIN * 60, now: a.clock.now,
    });
    const opened = b.get(cookie)!;
    expect(opened).toMatchObject({ id: s.id, csrf: s.csrf, signedIn: { displayName: 'alice', data: { idToken: 'x.y.z' } } });
    expect(setup().store.get(cookie)).toBeUndefined();
  });

  it('ends a session idle for idleMs, and any session at its end (lifetime, ID token, keys), whatever the browser does', () => {
    const { store, clock } = setup({ idleMs: 10 * MIN, ttlMs: 60 * MIN });
    let cookie = store.cookieValue(store.signIn(undefined, 'a', {}));
    // Each answer seals it again with a new "seen": active use keeps it.
    for (let i = 0; i < 5; i++) {
      clock.advance(9 * MIN);
      const s = store.get(cookie)!;
      expect(s).toBeDefined();
      cookie = store.cookieValue(s);
    }
    clock.advance(10 * MIN);
    expect(store.get(cookie)).toBeUndefined();
    // The lifetime holds however active the session is.
    let c2 = store.cookieValue(store.signIn(undefined, 'a', {}));
    for (let i = 0; i < 6; i++) { clock.advance(9 * MIN); const s = store.get(c2); if (!s) break; c2 = store.cookieValue(s); }
    clock.advance(9 * MIN);
    expect(store.get(c2)).toBeUndefined();
    // The ID token's expiry comes first when it is sooner.
    const t = store.signIn(undefined, 'a', {}, clock.now() + 2 * MIN);
    expect(t.expiresAt).toBe(clock.now() + 2 * MIN);
    const c3 = store.cookieValue(t);
    clock.advance(2 * MIN);
    expect(store.get(c3)).toBeUndefined();
  });

  it('refuses a signed-out session everywhere the list is known, and nothing at all before the list has been read', async () => {
    const { store, signOuts } = setup();
    const s = store.signIn(undefined, 'a', {});
    const cookie = store.cookieValue(s);
    await store.end(store.get(cookie)!);
    expect(store.get(cookie)).toBeUndefined();
    const other = store.cookieValue(store.signIn(undefined, 'b', {}));
    signOuts.synced = false;
    expect(store.get(other)).toBeUndefined();
    expect(store.unavailable()).toMatch(/sign-out list/);
  });

  it('refuses a sign-in too large for one cookie with a message, and drops a flash or a secret rather than the session', () => {
    const { store } = setup();
    expect(() => store.signIn(undefined, 'a', { idToken: 'x'.repeat(3000) })).toThrow(SessionTooLarge);
    const s = store.signIn(undefined, 'a', { idToken: 'x'.repeat(2200) });
    s.flash = 'f'.repeat(200);
    store.hold(s, { ...reveal, secret: 's'.repeat(600) });
    const opened = store.get(store.cookieValue(s))!;
    expect(opened.signedIn?.data).toEqual({ idToken: 'x'.repeat(2200) });
    expect(opened.reveals.size + (opened.flash ? 1 : 0)).toBeLessThan(2);
    // A small one travels in full, and is shown once.
    const t = store.signIn(undefined, 'a', {});
    const rid = store.hold(t, reveal);
    const o2 = store.get(store.cookieValue(t))!;
    expect(store.take(o2, rid)).toEqual(reveal);
    expect(store.take(store.get(store.cookieValue(o2))!, rid)).toBeUndefined();
  });

  it('opens sessions under every key of the file, seals with the one the plan says, and refuses a retired key\'s at once', () => {
    const file = join(dir, 'keys.json');
    const policy = { publishLeadMs: 0, lifetimeMs: 60 * MIN, rotateEveryMs: 60 * MIN };
    const old = newSessionKey(1);
    const write = (text: string) => { writeFileSync(`${file}.new`, text); renameSync(`${file}.new`, file); };
    write(serializeSessionKeys([old], policy));
    const keyring = new FileKeyring({ file, reloadMs: 3_600_000 });
    const { store } = setup({ keyring });
    const before = store.cookieValue(store.signIn(undefined, 'a', {}));
    expect(before.slice(0, 8)).toBe(old.id);
    const fresh = newSessionKey(2);
    write(serializeSessionKeys([fresh, old], policy));
    keyring.reload();
    expect(store.get(before)).toBeDefined();
    expect(store.cookieValue(store.get(before)!).slice(0, 8)).toBe(fresh.id);
    // Garbage or a missing file keeps the last good keys; a file without the old key retires it.
    write('garbage');
    keyring.reload();
    expect(store.get(before)).toBeDefined();
    rmSync(file);
    keyring.reload();
    expect(store.get(before)).toBeDefined();
    write(serializeSessionKeys([fresh], policy));
    keyring.reload();
    expect(store.get(before)).toBeUndefined();
    keyring.close();
  });
});
