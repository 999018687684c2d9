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
import { createHash, createPrivateKey, createPublicKey, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
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

/** At most this many keys in a set: a rotation holds two or three. */
export const MAX_SIGNING_KEYS = 16;

/** The JWK members of each algorithm's public key (RFC 7638 section 3.2: the thumbprint's input, in order). */
const PUBLIC_MEMBERS: Record<SigningAlgorithm, { kty: string; crv: string; members: readonly string[] }> = {
  ES256: { kty: 'EC', crv: 'P-256', members: ['crv', 'kty', 'x', 'y'] },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', members: ['crv', 'kty', 'x'] },
};
/** What a published JWK may hold besides its key members. */
const PUBLIC_METADATA = ['kid', 'alg', 'use'] as const;

/** RFC 7638 thumbprint (SHA-256, base64url) of a public JWK of `alg`. */
export function jwkThumbprint(alg: SigningAlgorithm, jwk: JWK): string {
  const { members } = PUBLIC_MEMBERS[alg];
  const canonical = `{${members.map((m) => `${JSON.stringify(m)}:${JSON.stringify((jwk as Record<string, unknown>)[m])}`).join(',')}}`;
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}

/** The public JWK as published: the key members of its algorithm, kid, alg and use, nothing else (never a private member). */
export function publicJwkOf(k: Pick<SigningKeyRecord, 'kid' | 'alg' | 'publicJwk'>): JWK {
  const src = k.publicJwk as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const m of PUBLIC_MEMBERS[k.alg].members) out[m] = src[m];
  return { ...out, kid: k.kid, alg: k.alg, use: 'sig' };
}

const PAIR_PROBE = Buffer.from('apikeys.dev/signing-key-pair-check');

const isTime = (v: unknown) => typeof v === 'string' && !Number.isNaN(Date.parse(v));

/** Throws a clear error (naming the kid, which is public, never key material) when one record is not a usable signing key. */
function checkSigningKey(k: Partial<SigningKeyRecord>, i: number): void {
  const name = typeof k.kid === 'string' && /^[\w-]{1,64}$/.test(k.kid) ? k.kid : `#${i}`;
  const bad = (why: string): never => { throw new Error(`signing keys: key ${name}: ${why}`); };
  if (typeof k.kid !== 'string' || !/^[\w-]{43}$/.test(k.kid)) bad('kid is not an RFC 7638 SHA-256 thumbprint');
  if (!SIGNING_ALGORITHMS.includes(k.alg!)) bad(`alg must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
  const alg = k.alg!;
  const want = PUBLIC_MEMBERS[alg];
  const pub = k.publicJwk as Record<string, unknown> | undefined;
  const priv = k.privateJwk as Record<string, unknown> | undefined;
  if (!pub || typeof pub !== 'object' || !priv || typeof priv !== 'object') bad('publicJwk and privateJwk must be JWK objects');
  if (pub!.kty !== want.kty || pub!.crv !== want.crv) bad(`publicJwk must be kty ${want.kty}, crv ${want.crv} for ${alg}`);
  const extra = Object.keys(pub!).filter((m) => !want.members.includes(m) && !(PUBLIC_METADATA as readonly string[]).includes(m));
  if (extra.length) bad(`publicJwk holds members a public ${alg} key has not (${extra.join(', ')})`);
  if (want.members.some((m) => typeof pub![m] !== 'string')) bad(`publicJwk lacks ${want.members.join(', ')}`);
  if ((pub!.kid ?? k.kid) !== k.kid || (pub!.alg ?? alg) !== alg || (pub!.use ?? 'sig') !== 'sig') bad('publicJwk names another kid, alg or use');
  if (jwkThumbprint(alg, pub as JWK) !== k.kid) bad('kid is not the RFC 7638 thumbprint of publicJwk');
  if (priv!.kty !== want.kty || priv!.crv !== want.crv || typeof priv!.d !== 'string') bad(`privateJwk must be a private ${want.kty} ${want.crv} key`);
  if (want.members.some((m) => priv![m] !== pub![m])) bad('privateJwk and publicJwk are not the same key');
  // Importing a JWK does not check that d belongs to x (and y): a signature made with the private key
  // must verify with the public key.
  let pairs = false;
  try {
    const digest = alg === 'ES256' ? 'sha256' : null;
    const signature = sign(digest, PAIR_PROBE, createPrivateKey({ key: priv as JsonWebKey, format: 'jwk' }));
    pairs = verify(digest, PAIR_PROBE, createPublicKey({ key: pub as JsonWebKey, format: 'jwk' }), signature);
  } catch {
    bad('privateJwk or publicJwk is not a valid key');
  }
  if (!pairs) bad('privateJwk does not belong to publicJwk');
  if (!isTime(k.createdAt) || !isTime(k.activateAt)) bad('createdAt and activateAt must be RFC 3339 times');
  if (k.retireAt !== undefined && !isTime(k.retireAt)) bad('retireAt must be an RFC 3339 time');
  if (k.expireAt !== undefined && !isTime(k.expireAt)) bad('expireAt must be an RFC 3339 time');
}

/**
 * Parses and checks the Secret's `keys.json` in full; throws a clear error for anything malformed, and
 * never one that quotes the document (it holds private keys). Each key's kid is the RFC 7638 thumbprint
 * of its public JWK, its public and private parts are one key pair of an allowed asymmetric algorithm
 * (ES256, EdDSA: never `oct`, never RSA), the public part holds no private member, and kids are unique.
 */
export function parseSigningKeySet(json: string): SigningKeySet {
  let v: Partial<SigningKeySet> | null;
  try {
    v = JSON.parse(json) as Partial<SigningKeySet> | null;
  } catch {
    throw new Error('signing keys: not valid JSON');
  }
  if (!v || typeof v !== 'object' || v.version !== 1 || !Array.isArray(v.keys)) throw new Error('signing keys: expected {"version":1,"keys":[...]}');
  if (v.keys.length > MAX_SIGNING_KEYS) throw new Error(`signing keys: ${v.keys.length} keys, at most ${MAX_SIGNING_KEYS}`);
  const kids = new Set<string>();
  v.keys.forEach((k, i) => {
    if (!k || typeof k !== 'object') throw new Error(`signing keys: key #${i} is not an object`);
    checkSigningKey(k, i);
    if (kids.has(k.kid)) throw new Error(`signing keys: kid ${k.kid} appears twice`);
    kids.add(k.kid);
  });
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
