/**
 * Whether an access token is live right now: the shared rule behind
 * introspection (RFC 7662) and forward-auth. A token is live when its
 * signature verifies with a published key, it is ours (`iss`), unexpired,
 * and what issued it still stands:
 * - an API key's token: the key exists (not deleted), is not expired, Ready
 *   or deleting, its Deployment is the one it was issued for and still
 *   exists, and the secret it was issued with is the key's current one, or
 *   the previous one within its grace period;
 * - a temporary user token (client_id USER_CLIENT_ID): the Deployment it was
 *   issued for still exists, is not being deleted, and is the same object
 *   (`deployment_uid`). The user's Kubernetes credential and RBAC are checked
 *   when the token is issued, not again: such tokens are short-lived instead;
 * - a federated token (client_id `federated:<namespace>/<name>`): its
 *   FederatedCredential still exists (the same object with the same issuer,
 *   audience, subject, claims and permissions, by `cred_fp`), is not
 *   being deleted, still trusts an issuer the server allows, and its
 *   Deployment is the one it was issued for (`deployment_uid`) and still
 *   exists;
 * - every way, its Deployment would issue it every audience it names now:
 *   each is one the Deployment allows (its spec.audiences, else the server's
 *   default audiences), and each custom one is held by that very Deployment
 *   (its AudienceClaim names it, api/claims.ts). Removing an audience from a
 *   Deployment, or the audience passing to another, ends such tokens at once;
 * - every way, a bearer token (no `cnf`) of a key, FederatedCredential or
 *   Deployment that now requires DPoP (spec.requireDPoP) is not live: turning
 *   the field on ends the bearer tokens issued before. A DPoP-bound token is
 *   live here; /authz also checks the proof that must come with it.
 */
import { isKeyId } from '../keys/format.ts';
import { FEDERATED_CLIENT_PREFIX, isPermission } from '../api/index.ts';
import { USER_CLIENT_ID, type AccessTokenClaims } from './access-token.ts';
import type { ServerContext } from './context.ts';
import { federatedCredentialStands, type FederatedEntry } from './federated.ts';
import { verifyJwt } from './jwt.ts';
import { keyRefusal, type DeploymentEntry, type KeyEntry } from './keys.ts';

/** Allowance for clocks of other replicas when checking `iat`. */
const CLOCK_SKEW_SECONDS = 60;

export interface LiveToken {
  claims: AccessTokenClaims;
  /** The API key that issued it; undefined for a temporary user token or a federated one. */
  key: KeyEntry | undefined;
  /** The FederatedCredential that issued it, for a federated token. */
  federated?: FederatedEntry;
  deployment: DeploymentEntry;
  permissions: ReadonlySet<string>;
}

export type TokenVerdict =
  | { live: true; token: LiveToken }
  | { live: false; why: 'malformed' | 'signature' | 'issuer' | 'expired' | 'key_gone' | 'key_refused' | 'secret_rotated' | 'deployment_gone'
    | 'audience_not_held' | 'credential_gone' | 'dpop_required' };

/** Whether the token names an audience its Deployment no longer allows or does not hold: then it is not live. */
function namesAudienceNotHeld(c: AccessTokenClaims, dep: DeploymentEntry, defaults: readonly string[]): boolean {
  const allowed = dep.audiences ?? defaults;
  const stands = (a: string) => allowed.includes(a) && !dep.audiencesNotHeld.has(a);
  return typeof c.aud === 'string' ? !stands(c.aud) : !c.aud.every(stands);
}

function isClaims(c: Record<string, unknown>): c is Record<string, unknown> & AccessTokenClaims {
  return typeof c.sub === 'string' && typeof c.client_id === 'string' && typeof c.iss === 'string'
    && typeof c.exp === 'number' && typeof c.iat === 'number' && typeof c.scope === 'string'
    && typeof c.deployment === 'string' && typeof c.jti === 'string'
    && (typeof c.aud === 'string' || (Array.isArray(c.aud) && c.aud.every((a) => typeof a === 'string')))
    && (c.cnf === undefined || (typeof c.cnf === 'object' && c.cnf !== null && typeof (c.cnf as { jkt?: unknown }).jkt === 'string'));
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

  if (c.client_id === USER_CLIENT_ID) return userTokenVerdict(ctx, c);
  if (c.client_id.startsWith(FEDERATED_CLIENT_PREFIX)) return federatedTokenVerdict(ctx, c);
  // API key tokens.
  if (!isKeyId(c.sub) || c.client_id !== c.sub) return { live: false, why: 'malformed' };
  const key = ctx.store.key(c.sub);
  if (!key || key.deployment !== c.deployment) return { live: false, why: 'key_gone' };
  const deployment = ctx.store.deployment(key.deployment);
  if (keyRefusal(key, deployment, nowMs)) return { live: false, why: 'key_refused' };
  const fp = c.cred_fp;
  const secretStands = typeof fp === 'string' && fp !== ''
    && (fp === key.currentFp || (fp === key.previousFp && key.previousValidUntilMs > nowMs));
  if (!secretStands) return { live: false, why: 'secret_rotated' };
  if (namesAudienceNotHeld(c, deployment!, ctx.defaultAudiences)) return { live: false, why: 'audience_not_held' };
  if (!c.cnf && (key.requireDpop || deployment!.requireDpop)) return { live: false, why: 'dpop_required' };
  const permissions = new Set(c.scope.split(' ').filter((p) => key.permissionSet.has(p)));
  return { live: true, token: { claims: c, key, deployment: deployment!, permissions } };
}

/** A temporary user token lives as long as the very Deployment it was issued for. */
function userTokenVerdict(ctx: ServerContext, c: AccessTokenClaims): TokenVerdict {
  if (c.sub === '' || isKeyId(c.sub) || typeof c.deployment_uid !== 'string' || c.deployment_uid === '') return { live: false, why: 'malformed' };
  const deployment = ctx.store.deployment(c.deployment);
  if (!deployment || deployment.deleting || deployment.uid !== c.deployment_uid) return { live: false, why: 'deployment_gone' };
  if (namesAudienceNotHeld(c, deployment, ctx.defaultAudiences)) return { live: false, why: 'audience_not_held' };
  if (!c.cnf && deployment.requireDpop) return { live: false, why: 'dpop_required' };
  const permissions = new Set(c.scope.split(' ').filter(isPermission));
  return { live: true, token: { claims: c, key: undefined, deployment, permissions } };
}

/** A federated token lives as long as the very credential and Deployment it was issued through, and its issuer's trust. */
function federatedTokenVerdict(ctx: ServerContext, c: AccessTokenClaims): TokenVerdict {
  if (c.sub === '' || isKeyId(c.sub) || typeof c.deployment_uid !== 'string' || typeof c.cred_fp !== 'string'
    || typeof c.federated_issuer !== 'string') return { live: false, why: 'malformed' };
  const fc = ctx.store.federatedCredential(c.client_id.slice(FEDERATED_CLIENT_PREFIX.length));
  if (!fc || fc.fingerprint !== c.cred_fp || fc.deployment !== c.deployment || fc.issuer !== c.federated_issuer
    || !ctx.federation.allows(fc.issuer)) return { live: false, why: 'credential_gone' };
  const deployment = ctx.store.deployment(c.deployment);
  if (!federatedCredentialStands(fc, deployment) || deployment.uid !== c.deployment_uid) return { live: false, why: 'deployment_gone' };
  if (namesAudienceNotHeld(c, deployment, ctx.defaultAudiences)) return { live: false, why: 'audience_not_held' };
  if (!c.cnf && (fc.requireDpop || deployment.requireDpop)) return { live: false, why: 'dpop_required' };
  const permissions = new Set(c.scope.split(' ').filter((p) => fc.permissionSet.has(p)));
  return { live: true, token: { claims: c, key: undefined, federated: fc, deployment, permissions } };
}
