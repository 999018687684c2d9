/**
 * Whether an access token is live right now: the shared rule behind
 * introspection (RFC 7662) and forward-auth. A token is live when its
 * signature verifies with a published key, it is ours (`iss`), unexpired,
 * and what issued it still stands: the key exists (not deleted), is not
 * expired, Ready or deleting, its Deployment is the one it was issued for and
 * still exists, and the secret it was issued with is the key's current one,
 * or the previous one within its grace period.
 */
import { isKeyId } from '../keys/format.ts';
import type { AccessTokenClaims } from './access-token.ts';
import type { ServerContext } from './context.ts';
import { verifyJwt } from './jwt.ts';
import { keyRefusal, type DeploymentEntry, type KeyEntry } from './keys.ts';

/** Allowance for clocks of other replicas when checking `iat`. */
const CLOCK_SKEW_SECONDS = 60;

export interface LiveToken {
  claims: AccessTokenClaims;
  key: KeyEntry;
  deployment: DeploymentEntry;
  permissions: ReadonlySet<string>;
}

export type TokenVerdict =
  | { live: true; token: LiveToken }
  | { live: false; why: 'malformed' | 'signature' | 'issuer' | 'expired' | 'key_gone' | 'key_refused' | 'secret_rotated' };

function isClaims(c: Record<string, unknown>): c is Record<string, unknown> & AccessTokenClaims {
  return typeof c.sub === 'string' && typeof c.client_id === 'string' && typeof c.iss === 'string'
    && typeof c.exp === 'number' && typeof c.iat === 'number' && typeof c.scope === 'string'
    && typeof c.deployment === 'string' && typeof c.jti === 'string'
    && (typeof c.aud === 'string' || (Array.isArray(c.aud) && c.aud.every((a) => typeof a === 'string')));
}

export function tokenVerdict(ctx: ServerContext, token: string, nowMs: number): TokenVerdict {
  if (token.length > 8192) return { live: false, why: 'malformed' };
  const verified = verifyJwt(token, (kid) => ctx.store.signing.verifier(kid, nowMs));
  if (!verified) return { live: false, why: 'signature' };
  const c = verified.claims;
  if (!isClaims(c)) return { live: false, why: 'malformed' };
  if (c.iss !== ctx.issuer) return { live: false, why: 'issuer' };
  const now = nowMs / 1000;
  if (c.exp <= now || c.iat > now + CLOCK_SKEW_SECONDS) return { live: false, why: 'expired' };

  // API key tokens. (Tokens of other subjects, such as RFC 8693 user tokens, are not issued yet.)
  if (!isKeyId(c.sub) || c.client_id !== c.sub) return { live: false, why: 'malformed' };
  const key = ctx.store.key(c.sub);
  if (!key || key.deployment !== c.deployment) return { live: false, why: 'key_gone' };
  const deployment = ctx.store.deployment(key.deployment);
  if (keyRefusal(key, deployment, nowMs)) return { live: false, why: 'key_refused' };
  const fp = c.cred_fp;
  const secretStands = typeof fp === 'string' && fp !== ''
    && (fp === key.currentFp || (fp === key.previousFp && key.previousValidUntilMs > nowMs));
  if (!secretStands) return { live: false, why: 'secret_rotated' };
  const permissions = new Set(c.scope.split(' ').filter((p) => key.permissionSet.has(p)));
  return { live: true, token: { claims: c, key, deployment: deployment!, permissions } };
}
