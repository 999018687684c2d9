/**
 * Sessions that live in their cookie, sealed (sealed.ts) with the keys every
 * console replica shares (keyring.ts): any replica opens any session, a
 * restarted console opens the sessions it sealed before, and no replica keeps
 * anything per session, so no session affinity is needed.
 *
 * What the cookie holds, sealed: the session id and CSRF token, the person's
 * name and the sign-in strategy's data (in-cluster: the ID token), the times
 * `iat` (signed in), `exp` (the session's end: the ID token's expiry, the
 * session lifetime and the keys' lifetime, whichever is first) and `seen`
 * (the last answer to it), and the one-view state of server.ts (a flash
 * message, a new secret waiting for its view). Every answer to a signed-in
 * request carries the cookie sealed again (server.ts), so `seen` moves on;
 * a session idle for longer than `idleMs` is over, as is one past `exp`.
 * Those times are inside the sealed part: the browser cannot change them,
 * and the cookie's own Max-Age is only a hint to the browser.
 *
 * Sign-out cannot be undone by a copy of the cookie: its session id goes on
 * the shared sign-out list (sign-outs.ts), which every replica checks.
 *
 * A cookie that does not open (tampered, truncated, sealed by a retired key,
 * garbage, too long) is no session: the person signs in again; never an
 * error. A session too large to seal into one cookie (an ID token of more
 * than about 2.5 KB) is refused at sign-in with a message saying so, never
 * cut short; a new secret that would not fit is not held (the page says it is
 * no longer shown) rather than losing the session.
 */
import type { Sealer } from './sealed.ts';
import { TooLargeToSeal } from './sealed.ts';
import type { SignOuts } from './sign-outs.ts';
import { holdReveal, randomId, takeReveal, type ConsoleSession, type Reveal, type Sessions } from './sessions.ts';

export const SESSION_PURPOSE = 'apikey-console session v1';

/** The sealed form of a session. */
interface SealedSession {
  sid: string;
  csrf: string;
  name: string;
  data: Record<string, unknown>;
  iat: number;
  exp: number;
  seen: number;
  flash?: string;
  reveals?: [id: string, until: number, reveal: Reveal][];
}

export class SessionTooLarge extends Error {
  override readonly name = 'SessionTooLarge';
}

function sealedOf(v: unknown): SealedSession | undefined {
  const s = v as Partial<SealedSession> | undefined;
  if (!s || typeof s.sid !== 'string' || typeof s.csrf !== 'string' || typeof s.name !== 'string' || typeof s.data !== 'object' || s.data === null
    || typeof s.iat !== 'number' || typeof s.exp !== 'number' || typeof s.seen !== 'number') return undefined;
  return s as SealedSession;
}

export interface SealedSessionOptions {
  sealer: Sealer;
  signOuts: Pick<SignOuts, 'synced' | 'isSignedOut' | 'record'>;
  /** The longest a session lives. */
  ttlMs: number;
  /** A session with no request for this long is over. */
  idleMs: number;
  now?: () => number;
}

export class SealedSessionStore implements Sessions {
  readonly inCookie = true;
  readonly size = 0;
  private readonly o: SealedSessionOptions;
  private readonly now: () => number;
  /** The times of each session object this store opened or made (a session object lives for one request). */
  private readonly times = new WeakMap<ConsoleSession, { iat: number; exp: number }>();

  constructor(o: SealedSessionOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
  }

  unavailable(): string | undefined {
    if (!this.o.sealer.keyring.sealing()) return 'The console has no session key yet (its keys Secret is not mounted or not made yet).';
    if (!this.o.signOuts.synced) return 'The console has not read its sign-out list from the Kubernetes API yet.';
    return undefined;
  }

  get(cookieValue: string | undefined): ConsoleSession | undefined {
    if (!cookieValue || !this.o.signOuts.synced) return undefined;
    const s = sealedOf(this.o.sealer.open(SESSION_PURPOSE, cookieValue));
    const now = this.now();
    if (!s || s.exp <= now || now - s.seen >= this.o.idleMs || this.o.signOuts.isSignedOut(s.sid, s.iat)) return undefined;
    const session: ConsoleSession = {
      id: s.sid, csrf: s.csrf, expiresAt: s.exp, pending: {}, signedIn: { displayName: s.name, data: s.data },
      reveals: new Map((s.reveals ?? []).map(([id, until, reveal]) => [id, { reveal, until }])),
      ...s.flash !== undefined ? { flash: s.flash } : {},
    };
    this.times.set(session, { iat: s.iat, exp: s.exp });
    return session;
  }

  signIn(_old: ConsoleSession | undefined, displayName: string, data: Record<string, unknown>, expiresAt?: number): ConsoleSession {
    const now = this.now();
    const exp = Math.min(now + this.o.ttlMs, now + this.o.sealer.keyring.lifetimeMs, expiresAt ?? Infinity);
    const session: ConsoleSession = { id: randomId(16), csrf: randomId(), expiresAt: exp, pending: {}, signedIn: { displayName, data }, reveals: new Map() };
    this.times.set(session, { iat: now, exp });
    // Too large to keep in a cookie: say so now, not at the first page.
    try {
      this.cookieValue(session);
    } catch (err) {
      if (err instanceof TooLargeToSeal) {
        throw new SessionTooLarge('Your sign-in is too large to keep in the console\'s cookie: the ID token your identity provider issued is too long '
          + '(usually a long groups claim). Ask your administrator to trim the claims of ID tokens for the console.');
      }
      throw err;
    }
    return session;
  }

  async end(s: ConsoleSession): Promise<void> {
    const t = this.times.get(s);
    if (t) await this.o.signOuts.record(s.id, t.iat, t.exp);
  }

  drop(): void { /* nothing is kept here: the cookie goes when it is cleared */ }

  hold(s: ConsoleSession, reveal: Reveal): string {
    return holdReveal(s, reveal, this.now());
  }

  take(s: ConsoleSession, id: string): Reveal | undefined {
    return takeReveal(s, id, this.now());
  }

  /**
   * The session sealed as it is now (seen now). A flash message or a secret
   * that would make it too large is dropped, in that order, so that the
   * session itself is never lost; without them it fits (checked at sign-in).
   */
  cookieValue(s: ConsoleSession): string {
    const t = this.times.get(s);
    if (!t || !s.signedIn) throw new Error('not a session of this store');
    const now = this.now();
    const reveals = [...s.reveals].filter(([, r]) => r.until > now).map(([id, r]): [string, number, Reveal] => [id, r.until, r.reveal]);
    const base: SealedSession = { sid: s.id, csrf: s.csrf, name: s.signedIn.displayName, data: s.signedIn.data, iat: t.iat, exp: t.exp, seen: now };
    const tries: SealedSession[] = [
      { ...base, ...s.flash !== undefined ? { flash: s.flash } : {}, ...reveals.length ? { reveals } : {} },
      { ...base, ...reveals.length ? { reveals } : {} },
      base,
    ];
    for (const [i, value] of tries.entries()) {
      try {
        return this.o.sealer.seal(SESSION_PURPOSE, value, Math.max(1, t.exp - now));
      } catch (err) {
        if (!(err instanceof TooLargeToSeal) || i === tries.length - 1) throw err;
      }
    }
    throw new Error('unreachable');
  }
}
