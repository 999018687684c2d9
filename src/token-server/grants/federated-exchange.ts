/**
 * RFC 8693 token exchange of an external OIDC token (keyless CI): a pipeline
 * presents the short-lived JWT its CI platform issued it (GitHub Actions,
 * GitLab CI, another cluster's ServiceAccount token) as `subject_token`, and
 * gets an access token of the Deployment `deployment=namespace/name` if one
 * of that Deployment's FederatedCredentials trusts it. token-exchange.ts
 * sends a request here when the subject token's type is `id_token`, or when
 * it is a JWT whose `iss` is one of --federation-issuers.
 *
 * The checks, cheapest first, each failure the same refusal:
 *
 *   1. the token is at most MAX_EXTERNAL_TOKEN_BYTES long and its claimed
 *      `iss` is an allowed issuer (otherwise nothing is fetched);
 *   2. the Deployment exists and has a FederatedCredential for that issuer,
 *      owned by this very Deployment (so a credential in another namespace,
 *      which names a Deployment of its own namespace, is never a candidate);
 *   3. the signature verifies with that issuer's keys, with an asymmetric
 *      algorithm, `iss` exactly, `exp`, `nbf` and a maximum age
 *      (issuer-keys.ts);
 *   4. the first candidate, oldest first, whose audience, subject and CEL
 *      expression all match; the expressions of all candidates share one
 *      runtime budget per request (claims-expression.ts);
 *   5. of those, the first whose spec.allowedNetworks and its Deployment's
 *      hold the client address (network-check.ts): a token that matches only
 *      credentials that refuse the address is refused like one that matches
 *      none.
 *
 * Any failure is one invalid_grant that does not say which check failed, so
 * a caller cannot probe which repositories or branches a Deployment trusts;
 * the debug log says why, never with the token. Failures count against the
 * client address like other failed exchanges: a throttled address still
 * gets its token for a valid subject token, and is answered 429 otherwise.
 *
 * The token: the RFC 9068 profile of every grant, with sub = the external
 * subject, client_id = `federated:<namespace>/<name>`, `federated_issuer` =
 * the external issuer, `deployment_uid` and `cred_fp` (the credential's
 * mark), so that it dies with its credential or its Deployment. Its lifetime
 * is the credential's tokenTTL, capped by the Deployment's maxTokenTTL and
 * 24h; its permissions the credential's, narrowed by `scope`.
 */
import { ACCESS_TOKEN_TYPE, FEDERATED_CREDENTIALS } from '../../api/index.ts';
import { celBudget, MAX_EXTERNAL_TOKEN_BYTES } from '../../federation/claims-expression.ts';
import { isKeyId } from '../../keys/format.ts';
import { accessTokenClaims, tokenResponse } from '../access-token.ts';
import type { RequestInfo, ServerContext } from '../context.ts';
import { federatedCredentialStands, federatedMatch } from '../federated.ts';
import { FederatedTokenRefused, unverifiedIssuer } from '../issuer-keys.ts';
import { tokenLifetimeSeconds } from '../keys.ts';
import { networkVerdict, recordNetworkVerdict } from '../network-check.ts';
import type { NetworkVerdict } from '../../shared/networks.ts';
import { InvalidGrant, SlowDown, TemporarilyUnavailable } from '../oauth-errors.ts';
import { single, type Params } from '../params.ts';
import { EXCHANGE_FAILURES } from '../ratelimit.ts';
import { resolveAudiences, resolveScope } from './common.ts';
import type { TokenResult } from './types.ts';

/** The one refusal of an external token, whatever failed. */
export const FEDERATED_REFUSAL = 'the subject_token was not accepted: it is invalid or expired, or no FederatedCredential of this Deployment trusts it';

function refused(why: string): FederatedTokenRefused {
  return new FederatedTokenRefused(why);
}

/**
 * An external subject becomes the token's `sub`: one shaped like a key id
 * would pass for an API key at a resource server that looks only at `sub`,
 * and control characters have no place in a header (/authz X-Auth-Subject).
 */
function usableSubject(sub: unknown): sub is string {
  // eslint-disable-next-line no-control-regex
  return typeof sub === 'string' && sub !== '' && sub.length <= 1024 && !isKeyId(sub) && !/[\x00-\x1f\x7f-\x9f]/.test(sub);
}

/** The credential that trusts the verified `claims`, or a refusal. */
async function matchingCredential(ctx: ServerContext, req: RequestInfo, subjectToken: string, ref: { namespace: string; name: string }) {
  if (subjectToken.length > MAX_EXTERNAL_TOKEN_BYTES) throw refused(`longer than ${MAX_EXTERNAL_TOKEN_BYTES} bytes`);
  const issuer = unverifiedIssuer(subjectToken);
  if (issuer === undefined) throw refused('not a JWT with an iss');
  if (!ctx.federation.allows(issuer)) throw refused('issuer not in --federation-issuers');
  const key = `${ref.namespace}/${ref.name}`;
  const dep = ctx.store.deployment(key);
  const candidates = ctx.store.federatedCredentials(key)
    .filter((fc) => fc.issuer === issuer && federatedCredentialStands(fc, dep));
  if (!dep || candidates.length === 0) throw refused('no FederatedCredential of this Deployment for this issuer');
  const claims = await ctx.federation.verify(issuer, subjectToken);
  // One budget for the whole request, however many credentials the Deployment has.
  const budget = celBudget();
  // The first that matches and allows the client address; else the first that matched says why not.
  let outside: { who: string; verdict: NetworkVerdict } | undefined;
  const fc = candidates.find((c) => {
    if (!federatedMatch(c, claims, ctx.issuer, budget)) return false;
    const verdict = networkVerdict(req, c.networks, dep.networks);
    if (!verdict.allowed) outside ??= { who: `${c.namespace}/${c.name}`, verdict };
    return verdict.allowed;
  });
  if (!fc && outside) {
    recordNetworkVerdict(ctx, req, 'federated', outside.who, outside.verdict);
    throw refused(req.audit.detail ?? 'the client address is outside the allowedNetworks');
  }
  if (!fc) throw refused('no FederatedCredential matches the audience, subject and claims');
  recordNetworkVerdict(ctx, req, 'federated', `${fc.namespace}/${fc.name}`, networkVerdict(req, fc.networks, dep.networks));
  const subject = claims.sub;
  if (!usableSubject(subject)) throw refused('the external subject cannot be a token subject here');
  return { dep, fc, issuer, subject };
}

/** Finds the credential; a refusal counts against the client address, and a throttled address is told to slow down. */
async function authenticate(ctx: ServerContext, req: RequestInfo, subjectToken: string, ref: { namespace: string; name: string }) {
  const blockedMs = ctx.exchangeLimiter.blockedForMs(EXCHANGE_FAILURES, req.address, req.nowMs);
  try {
    return await matchingCredential(ctx, req, subjectToken, ref);
  } catch (err) {
    if (!(err instanceof FederatedTokenRefused)) throw err;
    ctx.log.debug({ deployment: `${ref.namespace}/${ref.name}`, why: err.why, address: req.address }, 'federated token exchange refused');
    req.audit.detail = err.why;
    if (blockedMs > 0) throw new SlowDown(Math.max(1, Math.ceil(blockedMs / 1000)), 'too many failed token exchanges from this address');
    const delayMs = ctx.exchangeLimiter.failure(EXCHANGE_FAILURES, req.address, req.nowMs);
    if (delayMs > 0) ctx.log.info({ address: req.address, blockedMs: delayMs }, 'token exchange failures: this address is throttled for a while');
    throw new InvalidGrant(FEDERATED_REFUSAL, 'federated_token_refused');
  }
}

export async function federatedExchange(ctx: ServerContext, req: RequestInfo, params: Params, subjectToken: string,
  ref: { namespace: string; name: string }): Promise<TokenResult> {
  req.audit.deployment = `${ref.namespace}/${ref.name}`;
  const claimed = unverifiedIssuer(subjectToken);
  // Only an issuer of --federation-issuers is named: anything else is whatever the client wrote.
  if (claimed !== undefined && ctx.federation.allows(claimed)) req.audit.federatedIssuer = claimed;
  const { dep, fc, issuer, subject } = await authenticate(ctx, req, subjectToken, ref);
  req.audit.subject = subject;
  req.audit.federatedCredential = `${fc.namespace}/${fc.name}`;
  const audiences = resolveAudiences(params, dep, ctx.defaultAudiences);
  const scope = resolveScope(params, fc.permissions, fc.permissionSet, fc.scope, "this FederatedCredential's permissions");
  const nowMs = Date.now();
  const lifetimeSeconds = tokenLifetimeSeconds({ tokenTtlMs: fc.tokenTtlMs, expiresAtMs: Infinity, previousValidUntilMs: 0 }, dep, 'current', nowMs);
  const signingKey = ctx.store.signing.active(nowMs);
  if (!signingKey) throw new TemporarilyUnavailable('the token server has no signing key yet; retry shortly');
  const claims = accessTokenClaims({
    issuer: ctx.issuer,
    subject,
    clientId: fc.clientId,
    audiences,
    scope,
    deployment: fc.deployment,
    lifetimeSeconds,
    nowMs,
    deploymentUid: dep.uid,
    credentialFingerprint: fc.fingerprint,
    federatedIssuer: issuer,
  });
  const issuedType = single(params, 'requested_token_type') ?? ACCESS_TOKEN_TYPE;
  const body = await tokenResponse(signingKey, claims, { issued_token_type: issuedType });
  ctx.lastUsed.touch(fc, nowMs, FEDERATED_CREDENTIALS);
  // An audit line: which credential let which external subject in. Never a token.
  ctx.log.info({ federatedCredential: `${fc.namespace}/${fc.name}`, issuer, subject, deployment: fc.deployment, scope, jti: claims.jti, exp: claims.exp },
    'federated token issued');
  return { body, claims };
}
