/**
 * The console's session keys: the AES-256-GCM keys that seal its cookies
 * (console/sealed.ts), shared by every console replica through one Secret in
 * the operator's namespace (SESSION_KEYS_SECRET, key SESSION_KEYS_FILE) that
 * the controller makes and rotates (controller/session-keys.ts) and each
 * console Pod mounts and re-reads when it changes (console/keyring.ts).
 *
 * The file is JSON, `{"publishLeadMs","lifetimeMs","keys":[{"id","key","created"}]}`,
 * keys newest first: `id` is 8 base64url characters naming the key inside
 * every sealed value, `key` 32 random bytes in base64, `created` milliseconds
 * since the epoch. The two durations are the controller's policy, so that
 * the console needs no setting of its own to agree with it: it seals with the
 * key `sealingKey` picks, and seals nothing that lives past `lifetimeMs`.
 *
 * Invariants the two programs rely on:
 * - A key seals only once it has been in the Secret for `publishLeadMs`, so
 *   that every replica's mounted copy (the kubelet refreshes a mounted Secret
 *   within about a minute) can open what it seals; until then the previous
 *   key seals. `sealingKey` is that rule, used by both sides.
 * - Every key opens; a key is retired (dropped from the Secret) once the
 *   newest value it could have sealed has expired: `lifetimeMs` (the longest
 *   a sealed value lives, the console's session lifetime) after the next key
 *   took over sealing. A cookie sealed by a retired key opens nowhere.
 * - Anything unreadable in the file is dropped, never trusted; a file with
 *   no usable key is no key at all.
 */
import { randomBytes } from 'node:crypto';

export const SESSION_KEYS_SECRET = 'apikey-operator-console-session-keys';
export const SESSION_KEYS_FILE = 'keys.json';
/** The ConfigMap of sessions signed out before their expiry (console/sign-outs.ts); the controller makes it, the console fills it. */
export const SIGN_OUTS_CONFIGMAP = 'apikey-operator-console-sign-outs';
/** At most this many keys in the file: more is a file not of ours. */
export const MAX_SESSION_KEYS = 16;
const KEY_ID = /^[A-Za-z0-9_-]{8}$/;

export interface SessionKey {
  id: string;
  key: Buffer;
  created: number;
}

export interface SessionKeyPolicy {
  /** A new key is made when the newest is this old. */
  rotateEveryMs: number;
  /** A new key seals only after this long in the Secret. */
  publishLeadMs: number;
  /** The longest a sealed value lives (the session lifetime): how long a key keeps opening after it stopped sealing. */
  lifetimeMs: number;
}

export const DEFAULT_SESSION_KEY_POLICY: SessionKeyPolicy = {
  rotateEveryMs: 24 * 3600_000, publishLeadMs: 10 * 60_000, lifetimeMs: 8 * 3600_000,
};

export interface SessionKeysFile {
  keys: SessionKey[];
  publishLeadMs: number;
  lifetimeMs: number;
}

const duration = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fallback);

/** A keys file: its keys newest first (anything unreadable dropped) and its policy (the default where unreadable). */
export function parseSessionKeysFile(text: string | undefined): SessionKeysFile {
  let doc: { keys?: unknown; publishLeadMs?: unknown; lifetimeMs?: unknown } | undefined;
  try {
    doc = text ? JSON.parse(text) as typeof doc : undefined;
  } catch { /* unreadable: no keys */ }
  return {
    keys: parseKeyList(doc?.keys),
    publishLeadMs: duration(doc?.publishLeadMs, DEFAULT_SESSION_KEY_POLICY.publishLeadMs),
    lifetimeMs: duration(doc?.lifetimeMs, DEFAULT_SESSION_KEY_POLICY.lifetimeMs),
  };
}

function parseKeyList(list: unknown): SessionKey[] {
  if (!Array.isArray(list)) return [];
  const out: SessionKey[] = [];
  for (const k of list.slice(0, MAX_SESSION_KEYS) as { id?: unknown; key?: unknown; created?: unknown }[]) {
    if (typeof k?.id !== 'string' || !KEY_ID.test(k.id) || typeof k.key !== 'string' || typeof k.created !== 'number' || !Number.isFinite(k.created)) continue;
    const key = Buffer.from(k.key, 'base64');
    if (key.length !== 32 || out.some((o) => o.id === k.id)) continue;
    out.push({ id: k.id, key, created: k.created });
  }
  return out.sort((a, b) => b.created - a.created);
}

export function serializeSessionKeys(keys: readonly SessionKey[], policy: SessionKeyPolicy): string {
  return JSON.stringify({ publishLeadMs: policy.publishLeadMs, lifetimeMs: policy.lifetimeMs, keys: keys.map((k) => ({ id: k.id, key: k.key.toString('base64'), created: k.created })) });
}

export function newSessionKey(now: number): SessionKey {
  return { id: randomBytes(6).toString('base64url'), key: randomBytes(32), created: now };
}

/** The key that seals now: the newest published for `publishLeadMs`, else (a fresh install) the newest. */
export function sealingKey(keys: readonly SessionKey[], now: number, publishLeadMs: number): SessionKey | undefined {
  return keys.find((k) => now - k.created >= publishLeadMs) ?? keys[0];
}

/**
 * The keys to keep: a new one first when there is none or the newest is
 * `rotateEveryMs` old; then every key whose sealed values may still be live.
 * A key stopped sealing when the next newer one started (its creation plus
 * the publish lead), and opens for `lifetimeMs` after that.
 */
export function planSessionKeys(keys: readonly SessionKey[], policy: SessionKeyPolicy, now: number): { keys: SessionKey[]; made: boolean; retired: number } {
  const made = keys.length === 0 || now - keys[0]!.created >= policy.rotateEveryMs;
  const all = made ? [newSessionKey(now), ...keys] : [...keys];
  const kept = all.filter((k, i) => i === 0 || now < all[i - 1]!.created + policy.publishLeadMs + policy.lifetimeMs);
  return { keys: kept, made, retired: all.length - kept.length };
}

/** When the plan changes next: the next rotation or retirement (ms since the epoch). */
export function nextSessionKeyChange(keys: readonly SessionKey[], policy: SessionKeyPolicy): number {
  const times = keys.slice(1).map((_, i) => keys[i]!.created + policy.publishLeadMs + policy.lifetimeMs);
  return Math.min(keys[0] ? keys[0].created + policy.rotateEveryMs : 0, ...times);
}
