/**
 * RFC 9068 access tokens (JWT, `typ: at+jwt`), signed and verified with
 * node:crypto directly: one signature per token and nothing else. The header
 * of each signing key is encoded once; ES256 signatures use the JOSE form
 * (IEEE P1363, r||s), not DER.
 *
 * @example
 *   const token = signJwt(key, { iss, sub: keyId, ... });
 *   const verified = verifyJwt(token, (kid) => keys.verifier(kid));
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import type { SigningAlgorithm, SigningKeyRecord } from '../shared/signing-keys.ts';
import { privateKeyOf } from '../shared/signing-keys.ts';

/** Signs a JWS signing input elsewhere (a PKCS#11 token): the JOSE-form signature. */
export type RemoteSigner = (input: Buffer) => Promise<Buffer>;

export const ACCESS_TOKEN_TYP = 'at+jwt';

/** A signing key ready for the hot path. */
export interface JwtKey {
  kid: string;
  alg: SigningAlgorithm;
  /** base64url of the JOSE header, with the trailing '.'. */
  headerPrefix: string;
  /** The private key, for keys held in the signing-keys Secret... */
  privateKey?: KeyObject;
  /** ...or the signer of a key that never leaves its token. A key with neither only verifies. */
  remote?: RemoteSigner;
  publicKey: KeyObject;
}

/** base64url of the JOSE header of a key's tokens, with the trailing '.'. */
function headerPrefixOf(alg: SigningAlgorithm, kid: string): string {
  return `${Buffer.from(JSON.stringify({ alg, typ: ACCESS_TOKEN_TYP, kid })).toString('base64url')}.`;
}

/**
 * Imports a signing-keys record once: header encoded, keys parsed; `remote`
 * signs for a record whose private half is not in the Secret.
 */
export function jwtKey(record: SigningKeyRecord, remote?: RemoteSigner): JwtKey {
  return {
    kid: record.kid,
    alg: record.alg,
    headerPrefix: headerPrefixOf(record.alg, record.kid),
    privateKey: record.privateJwk ? privateKeyOf(record) : undefined,
    remote: record.privateJwk ? undefined : remote,
    publicKey: createPublicKey({ key: record.publicJwk, format: 'jwk' }),
  };
}

/** Whether a key can sign at all here. */
export const canSign = (key: JwtKey): boolean => !!key.privateKey || !!key.remote;

const digestOf = (alg: SigningAlgorithm) => (alg === 'ES256' ? 'sha256' : null);

/** Signs a JWT whose claims are `payload`: synchronously in process, asynchronously through a remote signer. */
export function signJwt(key: JwtKey, payload: object): string | Promise<string> {
  const input = key.headerPrefix + Buffer.from(JSON.stringify(payload)).toString('base64url');
  if (key.privateKey) {
    const signature = sign(digestOf(key.alg), Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  }
  if (!key.remote) throw new Error(`signing key ${key.kid} cannot sign here`);
  return key.remote(Buffer.from(input)).then((signature) => `${input}.${signature.toString('base64url')}`);
}

export interface VerifiedJwt {
  kid: string;
  claims: Record<string, unknown>;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

/**
 * The claims of `token` when it is a compact JWS of typ at+jwt whose
 * signature verifies with the key its `kid` names; undefined otherwise.
 * Time and issuer checks are the caller's.
 */
export function verifyJwt(token: string, keyFor: (kid: string) => JwtKey | undefined): VerifiedJwt | undefined {
  const dot1 = token.indexOf('.');
  const dot2 = token.indexOf('.', dot1 + 1);
  if (dot1 <= 0 || dot2 <= dot1 + 1 || dot2 === token.length - 1 || token.indexOf('.', dot2 + 1) !== -1) return undefined;
  const h = token.slice(0, dot1);
  const p = token.slice(dot1 + 1, dot2);
  const s = token.slice(dot2 + 1);
  if (!B64URL.test(h) || !B64URL.test(p) || !B64URL.test(s)) return undefined;
  let header: { alg?: unknown; typ?: unknown; kid?: unknown; crit?: unknown };
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as typeof header;
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || typeof header.kid !== 'string' || header.crit !== undefined) return undefined;
  if (typeof header.typ !== 'string' || header.typ.toLowerCase().replace(/^application\//, '') !== ACCESS_TOKEN_TYP) return undefined;
  const key = keyFor(header.kid);
  if (!key || header.alg !== key.alg) return undefined;
  const ok = verify(digestOf(key.alg), Buffer.from(token.slice(0, dot2)), { key: key.publicKey, dsaEncoding: 'ieee-p1363' },
    Buffer.from(s, 'base64url'));
  if (!ok) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return undefined;
  return { kid: key.kid, claims: claims as Record<string, unknown> };
}
