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
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
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
  /**
   * Destroys the private half of a key the plan dropped (every token it signed has expired), where
   * the source keeps it outside the Secret; returns how many objects went. Sources whose keys live in
   * the Secret have none: dropping the record was the destruction.
   */
  retire?(record: SigningKeyMaterial): Promise<number>;
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

/** At most this many keys in a set: a rotation holds two or three. */
export const MAX_SIGNING_KEYS = 16;

/** The JWK members of each algorithm's public key (RFC 7638 section 3.2: the thumbprint's input, in order). */
const PUBLIC_MEMBERS: Record<SigningAlgorithm, { kty: string; crv: string; members: readonly string[] }> = {
  ES256: { kty: 'EC', crv: 'P-256', members: ['crv', 'kty', 'x', 'y'] },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', members: ['crv', 'kty', 'x'] },
};
/** What a published JWK may hold besides its key members. */
const PUBLIC_METADATA = ['kid', 'alg', 'use'] as const;
/** The private members of a JWK of any key type (RFC 7518 section 6): none may appear outside privateJwk. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

const PKCS11_LABEL = /^[\x20-\x7e]{1,128}$/;
const PKCS11_ID = /^(?:[0-9a-f]{2}){1,64}$/;

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
const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** A record whose private half is in a PKCS#11 token: a well-formed location, and no private key material anywhere. */
function checkPkcs11Record(k: Partial<SigningKeyRecord>, bad: (why: string) => never): void {
  const loc = k.pkcs11 as unknown;
  if (!isObject(loc) || Object.keys(loc).some((m) => m !== 'label' && m !== 'id')
    || typeof loc.label !== 'string' || !PKCS11_LABEL.test(loc.label) || typeof loc.id !== 'string' || !PKCS11_ID.test(loc.id)) {
    bad('malformed pkcs11 location (label: 1-128 printable ASCII characters, id: lowercase hex, nothing else)');
  }
  if (PRIVATE_MEMBERS.some((m) => m in k)) bad('a pkcs11 key holds private key material');
}

/** A record whose private half is in the Secret: a private key of the same curve that signs what publicJwk verifies. */
function checkPrivateJwk(alg: SigningAlgorithm, pub: Record<string, unknown>, priv: unknown, bad: (why: string) => never): void {
  const want = PUBLIC_MEMBERS[alg];
  if (!isObject(priv)) bad('privateJwk must be a JWK object');
  if (priv.kty !== want.kty || priv.crv !== want.crv || typeof priv.d !== 'string') bad(`privateJwk must be a private ${want.kty} ${want.crv} key`);
  if (want.members.some((m) => priv[m] !== pub[m])) bad('privateJwk and publicJwk are not the same key');
  // Importing a JWK does not check that d belongs to x (and y): a signature made with the private key
  // must verify with the public key.
  let pairs = false;
  try {
    const digest = alg === 'ES256' ? 'sha256' : null;
    const signature = sign(digest, PAIR_PROBE, createPrivateKey({ key: priv, format: 'jwk' }));
    pairs = verify(digest, PAIR_PROBE, createPublicKey({ key: pub, format: 'jwk' }), signature);
  } catch {
    bad('privateJwk or publicJwk is not a valid key');
  }
  if (!pairs) bad('privateJwk does not belong to publicJwk');
}

/**
 * Throws a clear error (naming the kid, which is public, never key material) when one record is not a usable
 * signing key. Every record: an allowed algorithm, a public JWK of it with public members only, the kid its
 * RFC 7638 thumbprint, valid times, and exactly one of privateJwk (checked as the pair of publicJwk) and pkcs11
 * (a well-formed location, no private member anywhere).
 */
function checkSigningKey(k: Partial<SigningKeyRecord>, i: number): void {
  const name = typeof k.kid === 'string' && /^[\w-]{1,64}$/.test(k.kid) ? k.kid : `#${i}`;
  const bad = (why: string): never => { throw new Error(`signing keys: key ${name}: ${why}`); };
  if (typeof k.kid !== 'string' || !/^[\w-]{43}$/.test(k.kid)) bad('kid is not an RFC 7638 SHA-256 thumbprint');
  if (!SIGNING_ALGORITHMS.includes(k.alg!)) bad(`alg must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
  const alg = k.alg!;
  const want = PUBLIC_MEMBERS[alg];
  const pub = k.publicJwk as unknown;
  if (!isObject(pub)) bad('publicJwk must be a JWK object');
  const p = pub as Record<string, unknown>;
  if (p.kty !== want.kty || p.crv !== want.crv) bad(`publicJwk must be kty ${want.kty}, crv ${want.crv} for ${alg}`);
  const extra = Object.keys(p).filter((m) => !want.members.includes(m) && !(PUBLIC_METADATA as readonly string[]).includes(m));
  if (extra.length) bad(`publicJwk holds members a public ${alg} key has not (${extra.join(', ')})`);
  if (want.members.some((m) => typeof p[m] !== 'string')) bad(`publicJwk lacks ${want.members.join(', ')}`);
  if ((p.kid ?? k.kid) !== k.kid || (p.alg ?? alg) !== alg || (p.use ?? 'sig') !== 'sig') bad('publicJwk names another kid, alg or use');
  if (jwkThumbprint(alg, p) !== k.kid) bad('kid is not the RFC 7638 thumbprint of publicJwk');
  if ((k.privateJwk === undefined) === (k.pkcs11 === undefined)) bad('must have exactly one of privateJwk and pkcs11');
  if (k.pkcs11 !== undefined) checkPkcs11Record(k, bad);
  else checkPrivateJwk(alg, p, k.privateJwk, bad);
  if (!isTime(k.createdAt) || !isTime(k.activateAt)) bad('createdAt and activateAt must be RFC 3339 times');
  if (k.retireAt !== undefined && !isTime(k.retireAt)) bad('retireAt must be an RFC 3339 time');
  if (k.expireAt !== undefined && !isTime(k.expireAt)) bad('expireAt must be an RFC 3339 time');
}

/**
 * Parses and checks the Secret's `keys.json` in full; throws a clear error for anything malformed, and
 * never one that quotes the document (it holds private keys). Each key's kid is the RFC 7638 thumbprint
 * of its public JWK, of an allowed asymmetric algorithm (ES256, EdDSA: never `oct`, never RSA), the public
 * part holds no private member, the private half is either in the Secret (and pairs with the public part)
 * or in a PKCS#11 token (and no private member is anywhere in the record), and kids are unique.
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
