/**
 * Test helpers for DPoP: proofs made with jose (a third-party signer), good
 * ones and every kind of bad one, and an oauth4webapi client pointed at an
 * in-process token server whose issuer is a name, not its loopback address.
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import * as oauth from 'oauth4webapi';
import { randomUUID } from 'node:crypto';
import { accessTokenHash } from '../../src/token-server/dpop-proof.ts';

export interface ProofKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  /** The pair as oauth4webapi's DPoP() takes it. */
  pair: { privateKey: CryptoKey; publicKey: CryptoKey };
}

export async function proofKey(alg = 'ES256'): Promise<ProofKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  return { privateKey: pair.privateKey, publicJwk: await exportJWK(pair.publicKey), pair };
}

export interface ProofOptions {
  method?: string;
  url: string;
  accessToken?: string;
  nonce?: string;
  iat?: number;
  jti?: string;
  alg?: string;
  typ?: string;
  /** The jwk put in the header; default the key's public JWK. */
  jwk?: JWK;
  claims?: JWTPayload;
}

/** A DPoP proof signed by `key`, as a strict client makes it, with any field overridden. */
export function makeProof(key: ProofKey, o: ProofOptions): Promise<string> {
  const payload: JWTPayload = {
    jti: o.jti ?? randomUUID(), htm: o.method ?? 'POST', htu: o.url, iat: o.iat ?? Math.floor(Date.now() / 1000),
    ...(o.nonce === undefined ? {} : { nonce: o.nonce }),
    ...(o.accessToken === undefined ? {} : { ath: accessTokenHash(o.accessToken) }),
    ...o.claims,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: o.alg ?? 'ES256', typ: o.typ ?? 'dpop+jwt', jwk: o.jwk ?? key.publicJwk }).sign(key.privateKey);
}

/** An unsigned proof (`alg: none`) with the right claims. */
export function unsignedProof(key: ProofKey, url: string): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk })}.${b64({ jti: randomUUID(), htm: 'POST', htu: url, iat: Math.floor(Date.now() / 1000) })}.`;
}

/**
 * oauth4webapi's view of a token server whose issuer is `issuer` while it
 * listens at `base` (as behind an ingress): every request to the issuer goes
 * to `base`, unchanged otherwise, so proofs name the issuer's URLs.
 */
export function oauthServer(issuer: string, base: () => string) {
  const as: oauth.AuthorizationServer = {
    issuer, token_endpoint: `${issuer}/oauth/token`, introspection_endpoint: `${issuer}/oauth/introspect`,
  };
  const options = {
    [oauth.allowInsecureRequests]: true,
    [oauth.customFetch]: (url: string, init: RequestInit) => fetch(url.replace(issuer, base()), init),
  };
  return { as, options };
}
