/**
 * DPoP at the token server (RFC 9449): the token endpoint binds a token to
 * the key of the proof that came with the request (`cnf.jkt`, token_type
 * DPoP), and /authz checks that a bound token comes with a proof of that
 * key for the very request the proxy forwarded.
 *
 * A request's proof is checked in two steps, so that only requests that
 * passed everything else take room in the replay cache:
 *   1. `check` (before the grant): one DPoP header at most, MAX_PROOF_BYTES,
 *      the proof itself (dpop-proof.ts) against the method and the URL built
 *      from the configured issuer (never from the Host header), and its
 *      nonce (dpop-nonce.ts): with --dpop-require-nonce a proof without one
 *      is answered use_dpop_nonce with a DPoP-Nonce header; a nonce that is
 *      not (or no longer) ours always is;
 *   2. `commit` (once the client authenticated, just before the token is
 *      signed): the replay cache (dpop-replay.ts).
 */
import type { ServerContext } from './context.ts';
import { PATHS } from './discovery.ts';
import { DpopNonces, type NonceKeySource } from './dpop-nonce.ts';
import { MAX_PROOF_BYTES, normalizedUrl, proofHtu, verifyProof, type VerifiedProof } from './dpop-proof.ts';
import { ReplayCache } from './dpop-replay.ts';
import { InvalidDpopProof, UseDpopNonce } from './oauth-errors.ts';

export interface DpopOptions {
  /** Refuse proofs without a server nonce (--dpop-require-nonce). */
  requireNonce?: boolean;
  /** Entries of the replay cache (--dpop-replay-cache-size). */
  replayCacheSize?: number;
  /**
   * Further URLs of the token endpoint that proofs may name (--dpop-token-urls): the in-cluster
   * TOKEN_URL when the issuer is a public URL. Configured, never read from a request.
   */
  tokenUrls?: readonly string[];
}

/** A proof that passed `check`: the key to bind to, and the nonce to hand the client with the answer. */
export interface CheckedProof extends VerifiedProof {
  /** A fresh DPoP-Nonce for the response, when the proof did not carry the current one. */
  nextNonce: string | undefined;
}

export class Dpop {
  readonly nonces: DpopNonces;
  readonly replay: ReplayCache;
  readonly requireNonce: boolean;
  /** The token endpoint's URL from the issuer: a proof sent there names it (or one of `tokenUrlAliases`) as `htu`. */
  readonly tokenUrl: string;
  readonly tokenUrlAliases: readonly string[];

  constructor(issuer: string, keys: NonceKeySource, opts: DpopOptions = {}) {
    this.nonces = new DpopNonces(keys);
    this.replay = new ReplayCache(opts.replayCacheSize);
    this.requireNonce = opts.requireNonce ?? false;
    this.tokenUrl = issuer + PATHS.token;
    this.tokenUrlAliases = opts.tokenUrls ?? [];
  }

  /** The proof of a token request: for the issuer's token URL, else for one of the configured aliases. */
  checkTokenRequest(headers: readonly string[] | undefined, nowMs: number): CheckedProof | undefined {
    if (this.tokenUrlAliases.length === 0 || headers?.length !== 1) return this.check(headers, 'POST', this.tokenUrl, nowMs);
    const htu = normalizedUrl(proofHtu(headers[0]!) ?? '');
    const alias = this.tokenUrlAliases.find((u) => normalizedUrl(u) === htu);
    return this.check(headers, 'POST', alias ?? this.tokenUrl, nowMs);
  }

  /**
   * The proof of a request (its DPoP headers as Node lists them), checked
   * against `method` and `url`; undefined when there is none. Throws
   * InvalidDpopProof or UseDpopNonce. `accessToken`: a resource request
   * (/authz), where a nonce is checked when present but never required: the
   * client holds the nonces of the token endpoint's origin, not the app's.
   */
  check(headers: readonly string[] | undefined, method: string, url: string, nowMs: number, accessToken?: string): CheckedProof | undefined {
    const requireNonce = this.requireNonce && accessToken === undefined;
    if (headers === undefined || headers.length === 0) return undefined;
    if (headers.length > 1) throw new InvalidDpopProof('send exactly one DPoP header');
    const proof = headers[0]!;
    if (proof.length > MAX_PROOF_BYTES) throw new InvalidDpopProof(`the DPoP proof is longer than ${MAX_PROOF_BYTES} bytes`);
    const verified = verifyProof(proof, { method, url, nowMs, accessToken });
    const current = this.nonces.current(nowMs);
    if (verified.nonce === undefined) {
      if (requireNonce) throw new UseDpopNonce(current, 'this server requires a nonce in DPoP proofs: use the one in the DPoP-Nonce header');
    } else if (verified.nonce !== current && !this.nonces.valid(verified.nonce, nowMs)) {
      throw new UseDpopNonce(current, 'the DPoP proof\'s nonce is not (or no longer) valid: use the one in the DPoP-Nonce header');
    }
    const nextNonce = verified.nonce === current || (verified.nonce === undefined && !requireNonce) ? undefined : current;
    return { ...verified, nextNonce };
  }

  /** Records the proof as used (after everything else passed); throws on a replay or a full cache. */
  commit(proof: VerifiedProof, nowMs: number): void {
    this.replay.use(proof.jkt, proof.jti, proof.iat, nowMs);
  }
}

/**
 * The binding of a token about to be issued: the key of the request's proof
 * (recorded as used now), or none for a bearer token. A credential that
 * requires DPoP (`required`: its own spec.requireDPoP or its Deployment's)
 * gets no bearer token: invalid_dpop_proof.
 */
export function dpopBinding(ctx: ServerContext, proof: VerifiedProof | undefined, required: boolean, nowMs: number): string | undefined {
  if (!proof) {
    if (required) {
      throw new InvalidDpopProof('this credential (or its Deployment) requires DPoP-bound tokens: send a DPoP proof (RFC 9449) with the request',
        'dpop_required');
    }
    return undefined;
  }
  ctx.dpop.commit(proof, nowMs);
  return proof.jkt;
}
