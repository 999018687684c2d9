/**
 * The token signing keys, shared by the controller (which generates and
 * rotates them) and the token servers (which sign with the active one and
 * publish every live one in the JWKS). They live in one Secret in the
 * operator's namespace, data key `keys.json`.
 *
 * Rotation is planned ahead: a new key is written with `activateAt` at least
 * `publishLead` in the future, so every JWKS cache has seen it before it
 * signs; the key it replaces gets `retireAt` = that activation and
 * `expireAt` = retireAt + the longest token lifetime + clock skew, and stays
 * published until then. Token servers switch keys at `activateAt` on their
 * own clocks, with no further write.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { SecretObject } from '../api/index.ts';

export type SigningAlgorithm = 'ES256' | 'EdDSA';
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['ES256', 'EdDSA'];
export const SIGNING_KEYS_DATA_KEY = 'keys.json';

export interface SigningKeyRecord {
  kid: string;
  alg: SigningAlgorithm;
  /** Private JWK (with kid, alg, use). Never logged, never published. */
  privateJwk: JWK;
  /** Public JWK as published in the JWKS (kid, alg, use: sig). */
  publicJwk: JWK;
  createdAt: string;
  activateAt: string;
  retireAt?: string;
  expireAt?: string;
}

export interface SigningKeySet {
  version: 1;
  keys: SigningKeyRecord[];
}

export interface RotationPolicy {
  algorithm: SigningAlgorithm;
  /** How long a key signs before its successor takes over. */
  rotateEveryMs: number;
  /** How long a new key is published before it signs (longer than verifiers' JWKS cache). */
  publishLeadMs: number;
  /** The longest lifetime of a token (24h). */
  maxTokenLifetimeMs: number;
  /** Allowance for verifiers' clock skew. */
  clockSkewMs?: number;
}

export const DEFAULT_ROTATION: RotationPolicy = {
  algorithm: 'ES256',
  rotateEveryMs: 30 * 24 * 3600_000,
  publishLeadMs: 3600_000,
  maxTokenLifetimeMs: 24 * 3600_000,
  clockSkewMs: 5 * 60_000,
};

const iso = (ms: number) => new Date(ms).toISOString();
const ms = (s: string | undefined) => (s ? Date.parse(s) : NaN);

export async function generateSigningKey(alg: SigningAlgorithm, activateAtMs: number, nowMs = Date.now()):
Promise<SigningKeyRecord> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub, 'sha256');
  const priv = await exportJWK(privateKey);
  return {
    kid,
    alg,
    privateJwk: { ...priv, kid, alg, use: 'sig' },
    publicJwk: { ...pub, kid, alg, use: 'sig' },
    createdAt: iso(nowMs),
    activateAt: iso(activateAtMs),
  };
}

/** Parses and checks the Secret's `keys.json`; throws a clear error for anything malformed. */
export function parseSigningKeySet(json: string): SigningKeySet {
  const v = JSON.parse(json) as Partial<SigningKeySet>;
  if (v.version !== 1 || !Array.isArray(v.keys)) throw new Error('signing keys: expected {"version":1,"keys":[...]}');
  for (const k of v.keys) {
    if (typeof k.kid !== 'string' || !SIGNING_ALGORITHMS.includes(k.alg) || !k.privateJwk || !k.publicJwk
      || Number.isNaN(ms(k.activateAt))) {
      throw new Error(`signing keys: malformed key ${typeof k.kid === 'string' ? k.kid : '?'}`);
    }
    if ('d' in k.publicJwk) throw new Error(`signing keys: public JWK of ${k.kid} holds a private member`);
  }
  return v as SigningKeySet;
}

/**
 * The key set a signing-keys Secret holds: undefined when it has no `keys.json`;
 * throws (as parseSigningKeySet) when it is malformed.
 */
export function signingKeySetOf(secret: SecretObject): SigningKeySet | undefined {
  const raw = secret.data?.[SIGNING_KEYS_DATA_KEY];
  return raw ? parseSigningKeySet(Buffer.from(raw, 'base64').toString('utf8')) : undefined;
}

/** What a log line may say of a key set: no key material. */
export function describeSigningKeys(set: SigningKeySet): { kid: string; alg: SigningAlgorithm; activateAt: string; expireAt?: string }[] {
  return set.keys.map((k) => ({ kid: k.kid, alg: k.alg, activateAt: k.activateAt, expireAt: k.expireAt }));
}

/** The key that signs at `now`: the latest activated one that is not retired. */
export function activeKey(set: SigningKeySet, nowMs = Date.now()): SigningKeyRecord | undefined {
  let best: SigningKeyRecord | undefined;
  for (const k of set.keys) {
    if (ms(k.activateAt) > nowMs) continue;
    if (k.retireAt && ms(k.retireAt) <= nowMs) continue;
    if (!best || ms(k.activateAt) > ms(best.activateAt)) best = k;
  }
  return best;
}

/** Every key a live token may be signed with, and the next one: what the JWKS publishes. */
export function publishedKeys(set: SigningKeySet, nowMs = Date.now()): SigningKeyRecord[] {
  return set.keys.filter((k) => !k.expireAt || ms(k.expireAt) > nowMs);
}

/** The next time at which `activeKey` or `publishedKeys` changes, for timers. */
export function nextTransition(set: SigningKeySet, nowMs = Date.now()): number | undefined {
  const times = set.keys.flatMap((k) => [ms(k.activateAt), ms(k.retireAt), ms(k.expireAt)])
    .filter((t) => !Number.isNaN(t) && t > nowMs);
  return times.length ? Math.min(...times) : undefined;
}

/**
 * What the key set should be at `now` under `policy`: a first key if there is
 * none, a successor published `publishLead` before it is due, and expired keys
 * removed. Returns the same object when nothing needs to change.
 */
export async function planSigningKeys(set: SigningKeySet | undefined, policy: RotationPolicy, nowMs = Date.now()):
Promise<SigningKeySet> {
  const skew = policy.clockSkewMs ?? 0;
  if (!set || set.keys.length === 0 || !activeKey(set, nowMs) && !set.keys.some((k) => ms(k.activateAt) > nowMs)) {
    const first = await generateSigningKey(policy.algorithm, nowMs, nowMs);
    const keys = (set?.keys ?? []).filter((k) => k.expireAt && ms(k.expireAt) > nowMs);
    return { version: 1, keys: [...keys, first] };
  }
  let keys = set.keys.filter((k) => !k.expireAt || ms(k.expireAt) > nowMs);
  let changed = keys.length !== set.keys.length;
  const pending = keys.find((k) => ms(k.activateAt) > nowMs);
  const current = activeKey({ version: 1, keys }, nowMs);
  if (!pending && current) {
    const due = ms(current.activateAt) + policy.rotateEveryMs;
    const algorithmChanged = current.alg !== policy.algorithm;
    if (algorithmChanged || due - policy.publishLeadMs <= nowMs) {
      const activateAt = Math.max(algorithmChanged ? nowMs : due, nowMs + policy.publishLeadMs);
      const next = await generateSigningKey(policy.algorithm, activateAt, nowMs);
      keys = keys.map((k) => (k.retireAt ? k : {
        ...k, retireAt: iso(activateAt), expireAt: iso(activateAt + policy.maxTokenLifetimeMs + skew),
      }));
      keys.push(next);
      changed = true;
    }
  }
  return changed ? { version: 1, keys } : set;
}

const privateKeyCache = new WeakMap<SigningKeyRecord, KeyObject>();

/** The node:crypto private key of a record, imported once. */
export function privateKeyOf(k: SigningKeyRecord): KeyObject {
  let key = privateKeyCache.get(k);
  if (!key) {
    key = createPrivateKey({ key: k.privateJwk, format: 'jwk' });
    privateKeyCache.set(k, key);
  }
  return key;
}
