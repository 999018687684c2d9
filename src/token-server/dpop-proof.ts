/**
 * DPoP proofs (RFC 9449 section 4): the parser and verifier, pure functions
 * of (proof, expected method and URL, now). Replay (dpop-replay.ts) and
 * nonces (dpop-nonce.ts) are the caller's (dpop.ts).
 *
 * A proof is accepted only when every check of RFC 9449 4.3 holds:
 *
 *   - at most MAX_PROOF_BYTES long, a compact JWS of three base64url parts
 *     (no JWE, no unencoded payload, no `crit`);
 *   - header `typ` exactly `dpop+jwt`; `alg` one of DPOP_ALGORITHMS (never
 *     `none`, never a MAC); `jwk` a public key of the type and curve that
 *     `alg` needs, without any private member (`d`, `p`, `q`, `dp`, `dq`,
 *     `qi`, `oth`, `k`), RSA of 2048 to 4096 bits;
 *   - the signature verifies with that very `jwk`;
 *   - claims: `jti` a string of 1 to MAX_JTI_CHARS characters, `htm` equal
 *     to the request method, `htu` equal to the expected URL once both are
 *     normalized (RFC 3986 6.2.2 and 6.2.3, as WHATWG URL does) and the
 *     proof's query and fragment are dropped, `iat` a number within
 *     IAT_PAST_SECONDS before and IAT_FUTURE_SECONDS after now, `nonce` a
 *     string when present, `ath` (when an access token is presented) the
 *     base64url SHA-256 of that token.
 *
 * The key's RFC 7638 thumbprint (`jkt`) is what a token is bound to.
 * Nothing here throws anything but an InvalidDpopProof: any input, however
 * malformed, is a 400 (parsers.property.test.ts).
 */
import { constants, createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { InvalidDpopProof } from './oauth-errors.ts';

/** The longest proof read: an RSA-4096 key, its signature, `ath` and a nonce fit with room to spare. */
export const MAX_PROOF_BYTES = 4096;
/** The longest `jti`: the replay cache keeps every one for a minute. */
export const MAX_JTI_CHARS = 128;
/** How old a proof's `iat` may be; the replay cache keeps a `jti` this long after its `iat`. */
export const IAT_PAST_SECONDS = 60;
/** How far ahead of this server's clock a client's `iat` may be. */
export const IAT_FUTURE_SECONDS = 10;

interface AlgSpec {
  kty: 'EC' | 'OKP' | 'RSA';
  /** The JWK `crv` an EC or OKP key must have. */
  crv?: readonly string[];
  digest: string | null;
  pss?: boolean;
}

const ALGS: Readonly<Record<string, AlgSpec>> = {
  ES256: { kty: 'EC', crv: ['P-256'], digest: 'sha256' },
  ES384: { kty: 'EC', crv: ['P-384'], digest: 'sha384' },
  ES512: { kty: 'EC', crv: ['P-521'], digest: 'sha512' },
  EdDSA: { kty: 'OKP', crv: ['Ed25519', 'Ed448'], digest: null },
  Ed25519: { kty: 'OKP', crv: ['Ed25519'], digest: null },
  RS256: { kty: 'RSA', digest: 'sha256' },
  RS384: { kty: 'RSA', digest: 'sha384' },
  RS512: { kty: 'RSA', digest: 'sha512' },
  PS256: { kty: 'RSA', digest: 'sha256', pss: true },
  PS384: { kty: 'RSA', digest: 'sha384', pss: true },
  PS512: { kty: 'RSA', digest: 'sha512', pss: true },
};

/** The asymmetric algorithms a proof may use (discovery's dpop_signing_alg_values_supported). */
export const DPOP_ALGORITHMS: readonly string[] = Object.keys(ALGS);

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const B64URL = /^[A-Za-z0-9_-]+$/;
/** Members of each key type that RFC 7638 hashes, in lexicographic order. */
const THUMBPRINT_MEMBERS: Readonly<Record<AlgSpec['kty'], readonly string[]>> = {
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
  RSA: ['e', 'kty', 'n'],
};

export interface VerifiedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's key, base64url. */
  jkt: string;
  jti: string;
  iat: number;
  nonce: string | undefined;
}

export interface ProofExpectation {
  method: string;
  /** The URL of the request, without query and fragment. */
  url: string;
  /** The access token presented with the proof (resource requests): `ath` must be its hash. */
  accessToken?: string;
  nowMs: number;
}

/** base64url SHA-256 of an access token: a proof's `ath`. */
export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** The RFC 7638 thumbprint of a public JWK whose members were checked to be strings. */
export function jwkThumbprint(jwk: Record<string, unknown>, kty: AlgSpec['kty']): string {
  const canonical = `{${THUMBPRINT_MEMBERS[kty].map((m) => `${JSON.stringify(m)}:${JSON.stringify(jwk[m])}`).join(',')}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

function part(s: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidDpopProof('the DPoP proof is not a JWS of JSON objects');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InvalidDpopProof('the DPoP proof is not a JWS of JSON objects');
  return v as Record<string, unknown>;
}

/** The public key of `jwk` for `alg`, or an InvalidDpopProof saying what is wrong with it. */
function publicKeyOf(jwk: unknown, spec: AlgSpec): { key: KeyObject; jwk: Record<string, unknown> } {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw new InvalidDpopProof('the DPoP proof header must carry a jwk object');
  const j = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => m in j)) throw new InvalidDpopProof('the DPoP proof\'s jwk must be a public key: it carries a private member');
  if (j.kty !== spec.kty) throw new InvalidDpopProof('the DPoP proof\'s jwk is not of the key type its alg needs');
  for (const m of THUMBPRINT_MEMBERS[spec.kty]) {
    if (typeof j[m] !== 'string' || (m !== 'kty' && m !== 'crv' && !B64URL.test(j[m]))) {
      throw new InvalidDpopProof(`the DPoP proof's jwk lacks a valid ${m}`);
    }
  }
  if (spec.crv && !spec.crv.includes(j.crv as string)) throw new InvalidDpopProof('the DPoP proof\'s jwk is not on the curve its alg needs');
  if (spec.kty === 'RSA') {
    const bits = Buffer.from(j.n as string, 'base64url').length * 8;
    if (bits < 2048 || bits > 4096) throw new InvalidDpopProof('the DPoP proof\'s RSA key must have 2048 to 4096 bits');
  }
  const members: Record<string, string> = {};
  for (const m of THUMBPRINT_MEMBERS[spec.kty]) members[m] = j[m] as string;
  try {
    return { key: createPublicKey({ key: members, format: 'jwk' }), jwk: j };
  } catch {
    throw new InvalidDpopProof('the DPoP proof\'s jwk is not a valid public key');
  }
}

/** A URL as the RFC 3986 normalizations compare it, without query and fragment; undefined when it is none. */
export function normalizedUrl(url: string): string | undefined {
  if (url.length > 2048) return undefined;
  try {
    const u = new URL(url);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
    u.search = '';
    u.hash = '';
    u.username = '';
    u.password = '';
    return u.href;
  } catch {
    return undefined;
  }
}

/** The `htu` a proof claims, unverified: only to pick which configured URL to verify it against. */
export function proofHtu(proof: string): string | undefined {
  if (proof.length > MAX_PROOF_BYTES) return undefined;
  const parts = proof.split('.');
  if (parts.length !== 3 || !B64URL.test(parts[1]!)) return undefined;
  try {
    const htu = (part(parts[1]!)).htu;
    return typeof htu === 'string' ? htu : undefined;
  } catch {
    return undefined;
  }
}

/** Verifies `proof` against the request it came with (see the module header); throws InvalidDpopProof. */
export function verifyProof(proof: string, expect: ProofExpectation): VerifiedProof {
  if (proof.length > MAX_PROOF_BYTES) throw new InvalidDpopProof(`the DPoP proof is longer than ${MAX_PROOF_BYTES} bytes`);
  const parts = proof.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL.test(p))) throw new InvalidDpopProof('the DPoP proof must be a compact JWS');
  const [h, p, s] = parts as [string, string, string];
  const header = part(h);
  if (header.typ !== 'dpop+jwt') throw new InvalidDpopProof('the DPoP proof\'s typ must be dpop+jwt');
  if (header.crit !== undefined || header.b64 !== undefined) throw new InvalidDpopProof('the DPoP proof must not use crit or b64');
  const alg = typeof header.alg === 'string' && Object.hasOwn(ALGS, header.alg) ? header.alg : undefined;
  if (alg === undefined) throw new InvalidDpopProof(`the DPoP proof's alg must be one of ${DPOP_ALGORITHMS.join(', ')}`);
  const spec = ALGS[alg]!;
  const { key, jwk } = publicKeyOf(header.jwk, spec);
  const signature = Buffer.from(s, 'base64url');
  let ok: boolean;
  try {
    ok = verify(spec.digest, Buffer.from(`${h}.${p}`), spec.pss
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
      : { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidDpopProof('the DPoP proof\'s signature does not verify with its jwk');
  const claims = part(p);
  const { jti, htm, htu, iat, nonce, ath } = claims;
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_CHARS) {
    throw new InvalidDpopProof(`the DPoP proof needs a jti of 1 to ${MAX_JTI_CHARS} characters`);
  }
  if (htm !== expect.method) throw new InvalidDpopProof('the DPoP proof\'s htm is not the method of this request');
  if (typeof htu !== 'string' || normalizedUrl(htu) !== normalizedUrl(expect.url)) {
    throw new InvalidDpopProof('the DPoP proof\'s htu is not the URL of this request');
  }
  const now = expect.nowMs / 1000;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new InvalidDpopProof('the DPoP proof needs a numeric iat');
  if (iat < now - IAT_PAST_SECONDS || iat > now + IAT_FUTURE_SECONDS) {
    throw new InvalidDpopProof(`the DPoP proof's iat is not recent: it must be within ${IAT_PAST_SECONDS} s before and ${IAT_FUTURE_SECONDS} s after now`);
  }
  if (nonce !== undefined && (typeof nonce !== 'string' || nonce.length > 256)) throw new InvalidDpopProof('the DPoP proof\'s nonce must be a string');
  if (expect.accessToken !== undefined) {
    if (typeof ath !== 'string' || ath !== accessTokenHash(expect.accessToken)) {
      throw new InvalidDpopProof('the DPoP proof\'s ath is not the hash of the access token presented');
    }
  }
  return { jkt: jwkThumbprint(jwk, spec.kty), jti, iat, nonce };
}
