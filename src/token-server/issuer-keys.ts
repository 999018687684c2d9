/**
 * The keys of the external issuers the cluster admin allows
 * (--federation-issuers), and the verification of their tokens.
 *
 * The token server contacts an issuer only when it is in that list: its
 * discovery document (`<issuer>/.well-known/openid-configuration`, over
 * HTTPS, whose `issuer` must be the very issuer and whose `jwks_uri` must be
 * HTTPS too), then its JWKS through jose's remote key set, which caches the
 * keys and refetches on an unknown `kid` at most once per cooldown. Nothing
 * a namespace editor writes (a FederatedCredential's issuer) can make the
 * server fetch any other URL.
 *
 * A token that names issuer A in `iss` is checked only with A's keys and
 * only if `iss` is exactly A: the key set is picked by the claimed issuer,
 * and jwtVerify then requires that issuer. Only asymmetric algorithms are
 * accepted (no `none`, no HMAC, where a public key could pass for a shared
 * secret); `exp` and `iat` are required, `nbf` honoured, and a token older
 * than MAX_TOKEN_AGE is refused even if its issuer let it live longer.
 *
 * A private issuer (--federation-issuer-jwks) is never contacted: its keys
 * come from a file (issuer-jwks-files.ts) and its tokens get the very same
 * checks below.
 *
 * The issuer's TLS certificate is checked against Node's CAs plus, for an
 * issuer with a private CA, the PEM bundle of --federation-ca-file.
 *
 * What an issuer sends is bounded before it is parsed: a discovery document
 * or a JWKS larger than MAX_DOCUMENT_BYTES is refused as soon as its
 * Content-Length or its bytes say so (the rest is never read), and a JWKS
 * with more than MAX_JWKS_KEYS keys is refused whole. An unknown `kid`, which
 * anyone holding a token of an allowed issuer can send, refetches at most
 * once per cooldown.
 */
import { rootCertificates } from 'node:tls';
import {
  createRemoteJWKSet, customFetch, decodeJwt, errors, jwtVerify, type FetchImplementation, type JWTPayload, type JWTVerifyGetKey,
} from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import type { Logger } from '../shared/log.ts';
import type { JwksFiles } from './issuer-jwks-files.ts';

/** Asymmetric signatures only. */
export const FEDERATION_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
] as const;

/** An external token older than this (by `iat`) is refused: CI tokens live minutes. */
export const MAX_TOKEN_AGE_SECONDS = 3600;
/** Allowance for the issuer's clock in exp, nbf and iat. */
export const CLOCK_TOLERANCE_SECONDS = 60;
/** How long a discovery document is used before it is fetched again. */
const DISCOVERY_MAX_AGE_MS = 3600_000;
/** After a failed discovery, how long before the issuer is contacted again. */
const DISCOVERY_RETRY_MS = 10_000;
const FETCH_TIMEOUT_MS = 5000;
/** An unknown kid refetches the issuer's keys at most this often (jose's cooldown). */
const JWKS_COOLDOWN_MS = 30_000;
/** The largest discovery document or JWKS read: real ones are a few KiB; parsing this much takes well under a millisecond. */
export const MAX_DOCUMENT_BYTES = 64 * 1024;
/** The most keys a JWKS may hold (real issuers publish two to four, during a rotation). */
export const MAX_JWKS_KEYS = 64;

export type FetchKind = 'discovery' | 'jwks';

/** Why an external token was not accepted; for the debug log and tests, never for the client. */
export class FederatedTokenRefused extends Error {
  readonly why: string;
  constructor(why: string) {
    super(`federated token refused: ${why}`);
    this.name = 'FederatedTokenRefused';
    this.why = why;
  }
}

export interface IssuerKeysOptions {
  /** The issuers found through discovery (--federation-issuers). */
  issuers: ReadonlySet<string>;
  /** The private issuers, whose keys are given in files (--federation-issuer-jwks). */
  files?: JwksFiles;
  /** PEM bundle of further CAs trusted for the issuers' TLS (--federation-ca-file). */
  caPem?: string;
  log: Logger;
  /** Every fetch of an issuer's document, by kind and result (metrics). */
  observe?: (kind: FetchKind, result: 'ok' | 'error') => void;
  /** The key sets by issuer, instead of discovery over HTTPS (unit tests with local key sets). */
  keySets?: ReadonlyMap<string, JWTVerifyGetKey>;
}

interface IssuerState {
  keys?: JWTVerifyGetKey;
  /** The jwks_uri `keys` fetches from. */
  jwksUri?: string;
  discoveredAtMs: number;
  failedAtMs: number;
  pending?: Promise<JWTVerifyGetKey>;
}

/** `iss` of a JWT-shaped string, read without verifying anything; undefined for anything else. */
export function unverifiedIssuer(token: string): string | undefined {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

export class IssuerKeys {
  private readonly opts: IssuerKeysOptions;
  private readonly states = new Map<string, IssuerState>();
  private readonly fetchImpl: FetchImplementation;

  constructor(opts: IssuerKeysOptions) {
    this.opts = opts;
    const dispatcher = opts.caPem ? new Agent({ connect: { ca: [...rootCertificates, opts.caPem] } }) : undefined;
    // Never a redirect, never anything but https: the URLs are the admin's issuers and what their discovery names.
    this.fetchImpl = (url, init) => {
      if (!url.startsWith('https://')) return Promise.reject(new Error('only https is fetched'));
      return undiciFetch(url, { headers: Object.fromEntries(init.headers), signal: init.signal, redirect: 'manual', dispatcher });
    };
  }

  /** Federation is on when at least one issuer is allowed. */
  get enabled(): boolean {
    return this.opts.issuers.size > 0 || (this.opts.files?.count ?? 0) > 0;
  }

  allows(issuer: string): boolean {
    return this.opts.issuers.has(issuer) || this.opts.files?.has(issuer) === true;
  }

  /**
   * The verified claims of `token`, which claims to be from `issuer` (an
   * allowed one); throws FederatedTokenRefused when it is not valid.
   */
  async verify(issuer: string, token: string): Promise<JWTPayload> {
    if (!this.allows(issuer)) throw new FederatedTokenRefused('issuer not allowed');
    const keys = await this.keysOf(issuer);
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer,
        algorithms: [...FEDERATION_ALGORITHMS],
        maxTokenAge: MAX_TOKEN_AGE_SECONDS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp', 'iat', 'sub'],
      });
      return payload;
    } catch (err) {
      if (err instanceof errors.JOSEError) throw new FederatedTokenRefused(err.code);
      throw new FederatedTokenRefused('not a valid JWT');
    }
  }

  /** The key set of a private issuer, else the remote key set of an allowed issuer, found through its discovery document once an hour. */
  private async keysOf(issuer: string): Promise<JWTVerifyGetKey> {
    const given = this.opts.files?.keys(issuer) ?? this.opts.keySets?.get(issuer);
    if (given) return given;
    let state = this.states.get(issuer);
    if (!state) {
      state = { discoveredAtMs: 0, failedAtMs: 0 };
      this.states.set(issuer, state);
    }
    const now = Date.now();
    const fresh = state.keys && now - state.discoveredAtMs < DISCOVERY_MAX_AGE_MS;
    const resting = now - state.failedAtMs < DISCOVERY_RETRY_MS;
    if (fresh || (state.keys && resting)) return state.keys!;
    if (resting) throw new FederatedTokenRefused('issuer discovery failed recently');
    state.pending ??= this.discover(issuer, state).finally(() => { state.pending = undefined; });
    try {
      return await state.pending;
    } catch (err) {
      // An issuer that cannot be reached now keeps its previous keys, if it had any.
      if (state.keys) return state.keys;
      throw err;
    }
  }

  private async discover(issuer: string, state: IssuerState): Promise<JWTVerifyGetKey> {
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    try {
      const doc = await this.fetchJson(url);
      if (doc.issuer !== issuer) throw new Error('its discovery document names another issuer');
      if (typeof doc.jwks_uri !== 'string' || !doc.jwks_uri.startsWith('https://')) throw new Error('its jwks_uri is not https');
      const jwksUri = new URL(doc.jwks_uri);
      const fetchImpl = this.fetchImpl;
      const observe = this.opts.observe;
      const log = this.opts.log;
      const counted: FetchImplementation = async (u, init) => {
        try {
          const r = await fetchImpl(u, init);
          if (r.status !== 200) {
            await r.body?.cancel();
            observe?.('jwks', 'error');
            return r;
          }
          const jwks = checkedJwks(await boundedText(r, u));
          observe?.('jwks', 'ok');
          // jose reads the key set from this response: the bytes already read and checked.
          return new Response(jwks, { status: 200, headers: { 'content-type': 'application/json' } });
        } catch (err) {
          observe?.('jwks', 'error');
          log.warn({ issuer, why: err instanceof Error ? err.message : String(err) }, 'federation issuer JWKS refused');
          throw err;
        }
      };
      // The key set keeps its own cache, so it survives a later rediscovery when the URI is unchanged.
      if (!state.keys || state.jwksUri !== jwksUri.href) {
        state.keys = createRemoteJWKSet(jwksUri, {
          timeoutDuration: FETCH_TIMEOUT_MS, cooldownDuration: JWKS_COOLDOWN_MS, [customFetch]: counted,
        });
        state.jwksUri = jwksUri.href;
      }
      state.discoveredAtMs = Date.now();
      this.opts.observe?.('discovery', 'ok');
      this.opts.log.info({ issuer, jwksUri: jwksUri.href }, 'federation issuer discovered');
      return state.keys;
    } catch (err) {
      state.failedAtMs = Date.now();
      this.opts.observe?.('discovery', 'error');
      const why = err instanceof Error ? err.message : String(err);
      this.opts.log.warn({ issuer, why }, 'federation issuer discovery failed');
      throw new FederatedTokenRefused('issuer discovery failed');
    }
  }

  private async fetchJson(url: string): Promise<Record<string, unknown>> {
    const r = await this.fetchImpl(url, {
      method: 'GET', redirect: 'manual', headers: new Headers({ accept: 'application/json' }), signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (r.status !== 200) {
      await r.body?.cancel();
      throw new Error(`${url} answered ${r.status}`);
    }
    const doc = JSON.parse(await boundedText(r, url)) as unknown;
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${url} is not a JSON object`);
    return doc as Record<string, unknown>;
  }
}

/** A response's body as text, refused (and the rest left unread) past MAX_DOCUMENT_BYTES. */
export async function boundedText(r: { headers: Headers; body: ReadableStream<Uint8Array> | null }, url: string): Promise<string> {
  const tooLarge = () => new Error(`${url} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
  const declared = Number(r.headers.get('content-length') ?? 0);
  if (declared > MAX_DOCUMENT_BYTES) {
    await r.body?.cancel();
    throw tooLarge();
  }
  if (!r.body) return '';
  const reader = r.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_DOCUMENT_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The JWKS text when it is a JSON object with a `keys` list of at most MAX_JWKS_KEYS keys; throws otherwise. */
export function checkedJwks(text: string): string {
  const doc = JSON.parse(text) as unknown;
  const keys = doc && typeof doc === 'object' && !Array.isArray(doc) ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys)) throw new Error('the JWKS has no keys list');
  if (keys.length > MAX_JWKS_KEYS) throw new Error(`the JWKS holds ${keys.length} keys, more than ${MAX_JWKS_KEYS}`);
  return text;
}
