/**
 * Client authentication with an API key (RFC 6749 2.3.1): client_secret_basic
 * or client_secret_post, never both. The order of checks is the point:
 *
 *   1. the key id must have the key id format (no lookup otherwise);
 *   2. the secret must be well formed, checksum included (a typo costs no lookup);
 *   3. one SHA-256, constant-time compares with the current hash and, during
 *      its grace period, the previous one;
 *   4. the client address must be in the key's and its Deployment's
 *      spec.allowedNetworks (network-check.ts), checked only once the secret
 *      matched and answered exactly as a wrong secret: the same error, the
 *      same failure count, so a thief holding the secret outside the allowed
 *      networks cannot tell it is the right one;
 *   5. a miss counts as a failure of the (key id, address) pair, and a pair
 *      that failed too often is answered 429. The right secret is never
 *      throttled: key ids are public, so a flood of wrong secrets from a
 *      shared NAT or ingress address must not lock the key's owner out, and
 *      with 256-bit secrets throttling is there to shed load, not to stop
 *      guessing. A throttled miss still costs one hash, which is cheaper
 *      than the HTTP exchange around it;
 *   6. only then the key's state: deleted, expired, not Ready, Deployment gone
 *      or replaced. A client that proved its secret learns why it is refused.
 */
import { isKeyId, isWellFormedSecret, secretDigest } from '../keys/format.ts';
import type { RequestInfo, ServerContext } from './context.ts';
import { fromAllowedNetwork } from './network-check.ts';
import { keyRefusal, matchSecret, type DeploymentEntry, type KeyEntry, type SecretMatch } from './keys.ts';
import {
  InvalidClient, InvalidRequest, SlowDown, UnauthorizedClient, type InvalidClientOptions,
} from './oauth-errors.ts';
import { isBasicScheme, parseBasic, single, type Params } from './params.ts';

export interface AuthenticatedClient {
  key: KeyEntry;
  deployment: DeploymentEntry;
  match: SecretMatch;
}

/** Authenticates the API key a request presents, or throws the OAuth error to answer with. */
export function authenticateClient(ctx: ServerContext, req: RequestInfo, params: Params): AuthenticatedClient {
  const header = req.authorization;
  const basic = header !== undefined && isBasicScheme(header);
  /** Refusals after the credentials were read: ask for Basic again if that is how they came. */
  const viaBasic: InvalidClientOptions = { viaAuthorizationHeader: basic };
  const bodyId = single(params, 'client_id');
  const bodySecret = single(params, 'client_secret');
  let id: string;
  let secret: string;
  if (header !== undefined && header !== '') {
    if (!basic) throw new InvalidClient('only HTTP Basic client authentication is supported in the Authorization header', 'no_credentials', { viaAuthorizationHeader: true });
    if (bodySecret !== undefined) {
      throw new InvalidRequest('use one client authentication method: HTTP Basic or client_secret in the body, not both', 'two_auth_methods');
    }
    const creds = parseBasic(header);
    if (!creds) throw new InvalidClient('the HTTP Basic credentials are malformed or empty', 'no_credentials', { viaAuthorizationHeader: true });
    if (bodyId !== undefined && bodyId !== creds.id) {
      throw new InvalidRequest('client_id in the body differs from the HTTP Basic user', 'two_auth_methods');
    }
    ({ id, secret } = creds);
  } else {
    if (bodyId === undefined || bodySecret === undefined) {
      throw new InvalidClient('client authentication is required: client_id and client_secret, in the body or with HTTP Basic',
        'no_credentials');
    }
    id = bodyId;
    secret = bodySecret;
  }

  if (!isKeyId(id)) throw new InvalidClient('client_id is not an API key id (ak_ followed by 26 characters)', 'malformed_client_id', viaBasic);
  // A well-formed key id is public: the audit record may name it (never anything else the client sent).
  req.audit.keyId = id;
  if (!isWellFormedSecret(secret)) {
    throw new InvalidClient('client_secret is not a well-formed API key secret (its checksum does not match)', 'malformed_secret', viaBasic);
  }

  const key = ctx.store.key(id);
  const match = key ? matchSecret(key, secretDigest(secret), req.nowMs) : undefined;
  const deployment = key ? ctx.store.deployment(key.deployment) : undefined;
  const outside = !!key && !!match && !fromAllowedNetwork(ctx, req, 'apikey', id, key.networks, deployment?.networks);
  if (!key || !match || outside) {
    const blocked = ctx.limiter.blockedForMs(id, req.address, req.nowMs);
    if (blocked > 0) throw new SlowDown(Math.ceil(blocked / 1000));
    const blockedMs = ctx.limiter.failure(id, req.address, req.nowMs);
    if (blockedMs > 0) {
      ctx.log.info({ keyId: id, address: req.address, blockedMs }, 'client authentication failures: slowing this key id down for this address');
    }
    throw new InvalidClient('client authentication failed', !key ? 'unknown_key' : outside ? 'network_refused' : 'wrong_secret', viaBasic);
  }

  req.audit.deployment = key.deployment;
  const refusal = keyRefusal(key, deployment, req.nowMs);
  if (refusal) {
    // Only a client that proved the secret is counted here, so no guesser can grow the series.
    if (refusal.reason === 'key_expired') ctx.metrics.expiredKeyRefused(key.namespace, key.deployment.slice(key.namespace.length + 1));
    // Expired, being deleted or reported leaked: the credentials themselves are no longer valid.
    if (refusal.reason === 'key_expired' || refusal.reason === 'key_deleting' || refusal.reason === 'key_compromised') throw new InvalidClient(refusal.message, refusal.reason, viaBasic);
    throw new UnauthorizedClient(refusal.message, refusal.reason);
  }
  return { key, deployment: deployment!, match };
}
