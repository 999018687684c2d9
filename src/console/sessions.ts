/**
 * Sessions, in one of two stores behind the `Sessions` interface: this
 * module's server-side store (local mode, and in-cluster mode without shared
 * session keys), and the sealed store of sealed-sessions.ts (in-cluster mode
 * with the chart's shared keys: restarts and replicas).
 *
 * Server-side sessions: the browser holds only a random id in an HttpOnly,
 * SameSite=Strict cookie; what the session knows (who signed in, the CSRF
 * token, a secret waiting for its one view) stays in this process's memory
 * and is gone when the session expires or the console stops.
 *
 * Only a completed sign-in makes a session (a sign-in in progress keeps
 * nothing here: in-cluster.ts), and the store is bounded two ways: at most
 * MAX_SESSIONS_PER_PERSON per signed-in name, a new one ending that person's
 * oldest, so no one person can crowd out the others; and at most MAX_SESSIONS
 * in all, a new one ending the oldest of anyone's. Neither bound ever refuses
 * a sign-in.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'apikey_console_session';
/** Sessions in all, past which a new one ends the oldest. */
export const MAX_SESSIONS = 20_000;
/** Sessions of one signed-in name (browsers, devices), past which a new one ends that person's oldest. */
export const MAX_SESSIONS_PER_PERSON = 16;
/** How long a new secret waits for its one view (the redirect after Create API Key follows at once). */
export const REVEAL_TTL_MS = 5 * 60_000;

/** A secret held for exactly one view (the page after Create API Key or Rotate). */
export interface Reveal {
  kind: 'created' | 'rotated';
  namespace: string;
  deployment: string;
  name: string;
  keyId: string;
  secret: string;
  secretName: string;
  audience: string;
  tokenUrl: string;
  /** Rotation: until when the previous secret keeps working. */
  previousValidUntil?: string;
}

export interface ConsoleSession {
  readonly id: string;
  /** Checked on every POST: a form of another site cannot know it. */
  readonly csrf: string;
  expiresAt: number;
  /** What the sign-in strategy keeps about the person (local: nothing; in-cluster: the ID token). */
  signedIn?: { displayName: string; data: Record<string, unknown> };
  /** Anything a sign-in strategy needs between its own requests (e.g. OIDC state and PKCE verifier). */
  pending: Record<string, unknown>;
  /** Secrets waiting for their one view, each with the time after which it is forgotten unseen. */
  reveals: Map<string, { reveal: Reveal; until: number }>;
  /** One message for the next page (after a redirect). */
  flash?: string;
}

/** What the console's server asks of a session store. */
export interface Sessions {
  /** The live session of a cookie value, if any. */
  get(cookieValue: string | undefined): ConsoleSession | undefined;
  /** Sign-in gives a session a new id (no session fixation) and ends it at `expiresAt` at the latest. */
  signIn(old: ConsoleSession | undefined, displayName: string, data: Record<string, unknown>, expiresAt?: number): ConsoleSession;
  /** Sign-out: the session is over everywhere once this resolves; a rejection means it goes on (say so). */
  end(s: ConsoleSession): Promise<void>;
  /** Forgets a session whose credentials can no longer be used (a cookie-held one simply goes with its cookie). */
  drop(s: ConsoleSession): void;
  hold(s: ConsoleSession, reveal: Reveal): string;
  take(s: ConsoleSession, id: string): Reveal | undefined;
  /** The session cookie's value: the id (server-side), or the whole session sealed (in the cookie). */
  cookieValue(s: ConsoleSession): string;
  /** True when the session lives in its cookie: every answer then carries it again (idle time, flash, reveals). */
  readonly inCookie: boolean;
  /** Why no session can be opened or made now (e.g. no session key yet), or undefined. */
  unavailable(): string | undefined;
  /** Sessions this process holds in memory (none when they live in their cookies). */
  readonly size: number;
}

export const randomId = (bytes = 32): string => randomBytes(bytes).toString('base64url');

/** Holds a secret for one view within REVEAL_TTL_MS; the id goes in the URL of that view. */
export function holdReveal(s: ConsoleSession, reveal: Reveal, now: number): string {
  for (const [id, r] of s.reveals) if (r.until <= now) s.reveals.delete(id);
  const id = randomId(16);
  s.reveals.set(id, { reveal, until: now + REVEAL_TTL_MS });
  return id;
}

/** The secret, once: taking it forgets it; one not taken in time is gone too. */
export function takeReveal(s: ConsoleSession, id: string, now: number): Reveal | undefined {
  const r = s.reveals.get(id);
  s.reveals.delete(id);
  return r && r.until > now ? r.reveal : undefined;
}

export function sameToken(a: string | undefined, b: string): boolean {
  if (typeof a !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class SessionStore implements Sessions {
  readonly inCookie = false;
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly maxSessions: number;
  private readonly maxPerPerson: number;

  constructor(opts: { ttlMs: number; now?: () => number; maxSessions?: number; maxPerPerson?: number }) {
    this.ttlMs = opts.ttlMs;
    this.now = opts.now ?? Date.now;
    this.maxSessions = opts.maxSessions ?? MAX_SESSIONS;
    this.maxPerPerson = opts.maxPerPerson ?? MAX_SESSIONS_PER_PERSON;
  }

  /** A new session; at the bound, the oldest session (the first in the map's insertion order) ends. */
  create(): ConsoleSession {
    this.sweep();
    while (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const s: ConsoleSession = {
      id: randomId(), csrf: randomId(), expiresAt: this.now() + this.ttlMs, pending: {}, reveals: new Map(),
    };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session of this id; an expired one is forgotten. */
  get(id: string | undefined): ConsoleSession | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return s;
  }

  /** Sign-in gives a session a new id (no session fixation) and ends it at `expiresAt` at the latest. */
  signIn(old: ConsoleSession | undefined, displayName: string, data: Record<string, unknown>, expiresAt?: number): ConsoleSession {
    if (old) this.sessions.delete(old.id);
    const theirs = [...this.sessions.values()].filter((x) => x.signedIn?.displayName === displayName);
    for (let i = 0; i <= theirs.length - this.maxPerPerson; i++) this.sessions.delete(theirs[i]!.id);
    const s = this.create();
    s.signedIn = { displayName, data };
    if (expiresAt !== undefined) s.expiresAt = Math.min(s.expiresAt, expiresAt);
    return s;
  }

  destroy(id: string): void {
    this.sessions.delete(id);
  }

  end(s: ConsoleSession): Promise<void> {
    this.destroy(s.id);
    return Promise.resolve();
  }

  drop(s: ConsoleSession): void {
    this.destroy(s.id);
  }

  cookieValue(s: ConsoleSession): string {
    return s.id;
  }

  unavailable(): undefined {
    return undefined;
  }

  hold(s: ConsoleSession, reveal: Reveal): string {
    return holdReveal(s, reveal, this.now());
  }

  take(s: ConsoleSession, id: string): Reveal | undefined {
    return takeReveal(s, id, this.now());
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }
}
