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
 *
 * Where a key's private half lives is a key source (signing-source.ts): in
 * this Secret (`privateJwk`), or in a PKCS#11 token (`pkcs11`: its CKA_LABEL
 * and CKA_ID; the Secret then holds public material only). A record has
 * exactly one of the two. When the controller's configured source differs
 * from the active key's, the plan rolls over to a key of the new source the
 * same way it does for a new algorithm: published `publishLead` ahead, the
 * old key kept until its tokens have expired; so a switch either way never
 * fails a verification.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { SecretObject } from '../api/index.ts';

export type SigningAlgorithm = 'ES256' | 'EdDSA';
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['ES256', 'EdDSA'];
export const SIGNING_KEYS_DATA_KEY = 'keys.json';

/** Where a private key lives in a PKCS#11 token (src/shared/pkcs11/token.ts). */
export interface Pkcs11KeyLocation {
  /** CKA_LABEL. */
  label: string;
  /** CKA_ID, lowercase hex. */
  id: string;
}

/** A key pair as a source makes it: its kid, public JWK and where its private half is. */
export interface SigningKeyMaterial {
  kid: string;
  alg: SigningAlgorithm;
  /** Private JWK (with kid, alg, use), for keys held in the Secret. Never logged, never published. */
  privateJwk?: JWK;
  /** The private half's place in a PKCS#11 token, for keys that never leave it. */
  pkcs11?: Pkcs11KeyLocation;
  /** Public JWK as published in the JWKS (kid, alg, use: sig). */
  publicJwk: JWK;
}

export type KeySourceKind = 'secret' | 'pkcs11';

/** Makes new key pairs of one source; see signing-source.ts. */
export interface KeyGenerator {
  readonly kind: KeySourceKind;
  generate(alg: SigningAlgorithm): Promise<SigningKeyMaterial>;
}

export interface SigningKeyRecord extends SigningKeyMaterial {
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

/** The kid and published form of a public JWK (kty, crv, x, y only): its RFC 7638 thumbprint. */
export async function publishedJwk(pub: JWK, alg: SigningAlgorithm): Promise<{ kid: string; publicJwk: JWK }> {
  const kid = await calculateJwkThumbprint(pub, 'sha256');
  return { kid, publicJwk: { ...pub, kid, alg, use: 'sig' } };
}

/** A key pair generated in this process, for the Secret. */
export async function inProcessKeyMaterial(alg: SigningAlgorithm): Promise<SigningKeyMaterial> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
  const { kid, publicJwk } = await publishedJwk(await exportJWK(publicKey), alg);
  const priv = await exportJWK(privateKey);
  return { kid, alg, privateJwk: { ...priv, kid, alg, use: 'sig' }, publicJwk };
}

/** Keys held in the signing-keys Secret: the default source. */
export const SECRET_KEYS: KeyGenerator = { kind: 'secret', generate: inProcessKeyMaterial };

/** The source a record's private half belongs to. */
export const keySourceOf = (k: SigningKeyMaterial): KeySourceKind => (k.pkcs11 ? 'pkcs11' : 'secret');

export async function generateSigningKey(alg: SigningAlgorithm, activateAtMs: number, nowMs = Date.now(), source: KeyGenerator = SECRET_KEYS):
Promise<SigningKeyRecord> {
  const material = await source.generate(alg);
  return { ...material, createdAt: iso(nowMs), activateAt: iso(activateAtMs) };
}

const PKCS11_LABEL = /^[\x20-\x7e]{1,128}$/;
const PKCS11_ID = /^(?:[0-9a-f]{2}){1,64}$/;

/** Parses and checks the Secret's `keys.json`; throws a clear error for anything malformed. */
export function parseSigningKeySet(json: string): SigningKeySet {
  const v = JSON.parse(json) as Partial<SigningKeySet>;
  if (v.version !== 1 || !Array.isArray(v.keys)) throw new Error('signing keys: expected {"version":1,"keys":[...]}');
  for (const k of v.keys) {
    if (typeof k.kid !== 'string' || !SIGNING_ALGORITHMS.includes(k.alg) || !k.publicJwk
      || Number.isNaN(ms(k.activateAt))) {
      throw new Error(`signing keys: malformed key ${typeof k.kid === 'string' ? k.kid : '?'}`);
    }
    if (!k.privateJwk === !k.pkcs11) throw new Error(`signing keys: key ${k.kid} must have exactly one of privateJwk and pkcs11`);
    if (k.pkcs11 && (typeof k.pkcs11 !== 'object' || typeof k.pkcs11.label !== 'string' || !PKCS11_LABEL.test(k.pkcs11.label)
      || typeof k.pkcs11.id !== 'string' || !PKCS11_ID.test(k.pkcs11.id))) {
      throw new Error(`signing keys: key ${k.kid} has a malformed pkcs11 location`);
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
export function describeSigningKeys(set: SigningKeySet):
{ kid: string; alg: SigningAlgorithm; source: KeySourceKind; activateAt: string; expireAt?: string }[] {
  return set.keys.map((k) => ({ kid: k.kid, alg: k.alg, source: keySourceOf(k), activateAt: k.activateAt, expireAt: k.expireAt }));
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
export async function planSigningKeys(set: SigningKeySet | undefined, policy: RotationPolicy, nowMs = Date.now(),
  source: KeyGenerator = SECRET_KEYS): Promise<SigningKeySet> {
  const skew = policy.clockSkewMs ?? 0;
  if (!set || set.keys.length === 0 || !activeKey(set, nowMs) && !set.keys.some((k) => ms(k.activateAt) > nowMs)) {
    const first = await generateSigningKey(policy.algorithm, nowMs, nowMs, source);
    const keys = (set?.keys ?? []).filter((k) => k.expireAt && ms(k.expireAt) > nowMs);
    return { version: 1, keys: [...keys, first] };
  }
  let keys = set.keys.filter((k) => !k.expireAt || ms(k.expireAt) > nowMs);
  let changed = keys.length !== set.keys.length;
  const pending = keys.find((k) => ms(k.activateAt) > nowMs);
  const current = activeKey({ version: 1, keys }, nowMs);
  if (!pending && current) {
    const due = ms(current.activateAt) + policy.rotateEveryMs;
    // A new algorithm or a new key source: roll over at once, still published ahead.
    const algorithmChanged = current.alg !== policy.algorithm || keySourceOf(current) !== source.kind;
    if (algorithmChanged || due - policy.publishLeadMs <= nowMs) {
      const activateAt = Math.max(algorithmChanged ? nowMs : due, nowMs + policy.publishLeadMs);
      const next = await generateSigningKey(policy.algorithm, activateAt, nowMs, source);
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

/** The node:crypto private key of a record held in the Secret, imported once. */
export function privateKeyOf(k: SigningKeyRecord): KeyObject {
  let key = privateKeyCache.get(k);
  if (!key) {
    if (!k.privateJwk) throw new Error(`signing key ${k.kid} is not held in the Secret`);
    key = createPrivateKey({ key: k.privateJwk, format: 'jwk' });
    privateKeyCache.set(k, key);
  }
  return key;
}
