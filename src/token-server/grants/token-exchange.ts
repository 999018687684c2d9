/**
 * RFC 8693 token exchange: a person (or workload) presents their own
 * Kubernetes bearer token and gets a short-lived access token for one
 * Deployment, without an API key. The subject token is the only credential:
 * client authentication is refused rather than ignored, so nobody believes a
 * key took part.
 *
 * The checks run in an order that reveals nothing to whom RBAC does not let
 * see a Deployment:
 *
 *   1. the request's form (no Kubernetes call): subject_token and its type,
 *      deployment=namespace/name, known scope names, no actor_token;
 *   2. TokenReview of the subject token -> invalid_grant when not accepted;
 *   3. SubjectAccessReview: create on deployments/token (every permission),
 *      else on deployments/readtoken (read only) -> access_denied (403)
 *      when neither, for an existing Deployment and a missing one alike,
 *      since the Deployment is not even looked up before;
 *   4. only then the Deployment (invalid_target when it does not exist),
 *      its audiences (invalid_target) and the scope (invalid_scope beyond
 *      what RBAC allows; default: all of it).
 *
 * Steps 2 and 3 cost the apiserver a review each unless cached, so they are
 * guarded per client address, like failed client secrets: a refusal there
 * (invalid_grant, access_denied) counts as a failure of the address
 * (ctx.exchangeLimiter), and an address that failed too often is answered
 * from the review cache only. A throttled address's subject token that the
 * cache already approved still gets its token (so a flood from a shared NAT
 * or ingress address does not lock out everyone behind it once they have
 * been checked), while anything that would need a new review, or that the
 * cache denies, is 429 slow_down with Retry-After. Each address also has a
 * fair share of the reviews in flight (review-budget.ts): beyond it, 429.
 *
 * An external OIDC token (an `id_token`, or a JWT of an issuer in
 * --federation-issuers) takes another path: federated-exchange.ts.
 *
 * The token: sub = the Kubernetes user name, client_id = USER_CLIENT_ID, no
 * key id, `deployment_uid`; no `act` (the user acts as themselves: nobody
 * acts on another's behalf) and no `may_act`. Its lifetime is
 * --user-token-ttl (1h), capped by the Deployment's maxTokenTTL, 24h, and the
 * subject token's own `exp` when it is a JWT: it never outlives the
 * credential it was exchanged for.
 */
import {
  ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, isPermission, JWT_TOKEN_TYPE, PERMISSIONS, TOKEN_EXCHANGE_GRANT,
} from '../../api/index.ts';
import { isKeyId } from '../../keys/format.ts';
import { USER_CLIENT_ID, accessTokenClaims, tokenResponse } from '../access-token.ts';
import type { RequestInfo, ServerContext } from '../context.ts';
import { dpopBinding } from '../dpop.ts';
import { tokenLifetimeSeconds } from '../keys.ts';
import {
  AccessDenied, InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget, SlowDown, TemporarilyUnavailable,
} from '../oauth-errors.ts';
import { multi, single, type Params } from '../params.ts';
import { EXCHANGE_FAILURES } from '../ratelimit.ts';
import { ReviewRefused, ReviewUnavailable, type KubeUser, type ReviewAsker, type SubjectReviewer } from '../reviews.ts';
import { unverifiedIssuer } from '../issuer-keys.ts';
import { resolveAudiences, resolveScope, truncate } from './common.ts';
import { federatedExchange } from './federated-exchange.ts';
import type { Grant, TokenResult } from './types.ts';

const TOKEN_TYPES: readonly string[] = [ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE];
const SUBJECT_TOKEN_TYPES: readonly string[] = [ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, ID_TOKEN_TYPE];

/**
 * What RBAC grants, first match wins: `create` on deployments/token gives
 * every permission; `create` on deployments/readtoken gives read only, so an
 * admin can let people read without letting them deploy.
 */
export const TOKEN_SUBRESOURCES: readonly { subresource: string; permissions: readonly string[] }[] = [
  { subresource: 'token', permissions: PERMISSIONS },
  { subresource: 'readtoken', permissions: ['read'] },
];

const DENIED = 'you may not get tokens for this Deployment, or it does not exist: token exchange needs create on ' +
  'deployments/token (every permission) or deployments/readtoken (read) in apikeys.dev for it';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Visible ASCII: what any bearer token is made of. Anything else is no token at all. */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

/** `namespace/name` of the `deployment` parameter. */
export function parseDeploymentRef(value: string | undefined): { namespace: string; name: string } {
  if (value === undefined) {
    throw new InvalidRequest('the parameter deployment (namespace/name of the Deployment) is required', 'missing_parameter');
  }
  const slash = value.indexOf('/');
  const namespace = value.slice(0, slash);
  const name = value.slice(slash + 1);
  if (slash === -1 || !DNS_LABEL.test(namespace) || !DNS_SUBDOMAIN.test(name)) {
    throw new InvalidRequest(`deployment must be namespace/name, such as team-a/airflow-prod; got ${JSON.stringify(truncate(value))}`);
  }
  return { namespace, name };
}

/** `exp` of a JWT-shaped token, read only after the apiserver accepted the token. */
export function jwtExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown } | null;
    return typeof claims?.exp === 'number' && Number.isFinite(claims.exp) ? Math.floor(claims.exp) : undefined;
  } catch {
    return undefined;
  }
}

function checkForm(req: RequestInfo, params: Params): void {
  if ((req.authorization !== undefined && req.authorization !== '') || single(params, 'client_secret') !== undefined) {
    throw new InvalidRequest('token exchange takes no client authentication: the subject_token is the credential; ' +
      'send no Authorization header and no client_secret', 'client_auth_not_allowed');
  }
  if (single(params, 'actor_token') !== undefined || single(params, 'actor_token_type') !== undefined) {
    throw new InvalidRequest('actor_token is not supported: a token is issued to the subject itself (no delegation)', 'unsupported_parameter');
  }
  const type = single(params, 'subject_token_type');
  if (type === undefined) throw new InvalidRequest('the parameter subject_token_type is required', 'missing_parameter');
  if (!SUBJECT_TOKEN_TYPES.includes(type)) {
    throw new InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE} or ${JWT_TOKEN_TYPE} (a Kubernetes bearer token), ` +
      `or ${JWT_TOKEN_TYPE} or ${ID_TOKEN_TYPE} (an external OIDC token, with federation)`, 'unsupported_token_type');
  }
  const requested = single(params, 'requested_token_type');
  if (requested !== undefined && !TOKEN_TYPES.includes(requested)) {
    throw new InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE} or ${JWT_TOKEN_TYPE}: this server issues JWT access tokens only`,
      'unsupported_token_type');
  }
  for (const s of (single(params, 'scope') ?? '').split(' ')) {
    if (s !== '' && !isPermission(s)) {
      throw new InvalidScope(`the scope ${JSON.stringify(truncate(s))} is unknown; known: ${PERMISSIONS.join(', ')}`);
    }
  }
  // Refuse a malformed audience now, not after the reviews.
  single(params, 'audience');
  multi(params, 'resource');
}

/** The permissions RBAC allows `user` on the Deployment, or AccessDenied. */
async function allowedPermissions(reviewer: SubjectReviewer, user: KubeUser, ref: { namespace: string; name: string },
  asker: ReviewAsker): Promise<readonly string[]> {
  for (const { subresource, permissions } of TOKEN_SUBRESOURCES) {
    if (await reviewer.mayCreate(user, { ...ref, subresource }, asker)) return permissions;
  }
  throw new AccessDenied(DENIED);
}

/** The user and what RBAC allows them (steps 2 and 3), or the refusal; refusals count against the client address. */
async function reviewSubject(ctx: ServerContext, reviewer: SubjectReviewer, req: RequestInfo, subjectToken: string,
  ref: { namespace: string; name: string }): Promise<{ user: KubeUser; granted: readonly string[] }> {
  const blockedMs = ctx.exchangeLimiter.blockedForMs(EXCHANGE_FAILURES, req.address, req.nowMs);
  const asker: ReviewAsker = { client: req.address, cachedOnly: blockedMs > 0 };
  try {
    const user = await reviewer.authenticate(subjectToken, asker);
    if (!user) throw new InvalidGrant('the subject_token was not accepted by Kubernetes (invalid, expired or revoked)');
    // Vouched for by the apiserver: the audit record may name them.
    req.audit.subject = user.username;
    // A user name shaped like a key id would pass for an API key at a resource server that looks only at `sub`.
    if (isKeyId(user.username)) throw new InvalidGrant('this Kubernetes user name has the form of an API key id and cannot be exchanged');
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f-\x9f]/.test(user.username)) throw new InvalidGrant('this Kubernetes user name holds control characters and cannot be exchanged');
    return { user, granted: await allowedPermissions(reviewer, user, ref, asker) };
  } catch (err) {
    if (err instanceof ReviewRefused) {
      if (err.why === 'busy') throw new SlowDown(1, 'too many token exchanges from this address are being checked at once');
      throw new SlowDown(Math.max(1, Math.ceil(blockedMs / 1000)), 'too many failed token exchanges from this address');
    }
    if (!(err instanceof InvalidGrant || err instanceof AccessDenied)) throw err;
    // A throttled address learns nothing more from its failures, and they do not lengthen its penalty.
    if (blockedMs > 0) throw new SlowDown(Math.max(1, Math.ceil(blockedMs / 1000)), 'too many failed token exchanges from this address');
    const delayMs = ctx.exchangeLimiter.failure(EXCHANGE_FAILURES, req.address, req.nowMs);
    if (delayMs > 0) {
      ctx.log.info({ address: req.address, blockedMs: delayMs }, 'token exchange failures: this address is answered from the review cache only for a while');
    }
    throw err;
  }
}

/**
 * Whether the subject token is an external OIDC token (federated-exchange.ts):
 * an `id_token`, or a JWT whose `iss` is an allowed federation issuer. Any
 * other JWT is a Kubernetes token, as before federation.
 */
function isFederated(ctx: ServerContext, params: Params, subjectToken: string): boolean {
  const type = single(params, 'subject_token_type');
  if (type === ID_TOKEN_TYPE) {
    if (!ctx.federation.enabled) {
      throw new InvalidRequest(`subject_token_type ${ID_TOKEN_TYPE} needs federation, which this token server does not offer (--federation-issuers)`,
        'unsupported_token_type');
    }
    return true;
  }
  if (type !== JWT_TOKEN_TYPE || !ctx.federation.enabled) return false;
  const iss = unverifiedIssuer(subjectToken);
  return iss !== undefined && ctx.federation.allows(iss);
}

async function exchange(ctx: ServerContext, req: RequestInfo, params: Params): Promise<TokenResult> {
  checkForm(req, params);
  const subjectToken = single(params, 'subject_token');
  if (subjectToken === undefined) throw new InvalidRequest('the parameter subject_token is required', 'missing_parameter');
  const ref = parseDeploymentRef(single(params, 'deployment'));
  if (!ctx.store.signing.active(req.nowMs)) throw new TemporarilyUnavailable('the token server has no signing key yet; retry shortly');
  if (!TOKEN_CHARS.test(subjectToken)) throw new InvalidGrant('the subject_token is not a bearer token');
  if (isFederated(ctx, params, subjectToken)) return federatedExchange(ctx, req, params, subjectToken, ref);
  const reviewer = ctx.reviewer;
  if (!reviewer) throw new TemporarilyUnavailable('token exchange needs the Kubernetes API, which this token server has not');

  req.audit.deployment = `${ref.namespace}/${ref.name}`;
  const { user, granted } = await reviewSubject(ctx, reviewer, req, subjectToken, ref);

  const key = `${ref.namespace}/${ref.name}`;
  const dep = ctx.store.deployment(key);
  if (!dep || dep.deleting) {
    throw new InvalidTarget(`the Deployment ${key} does not exist (or is in a namespace this token server does not watch)`);
  }
  const audiences = resolveAudiences(params, dep, ctx.defaultAudiences);
  const scope = resolveScope(params, granted, new Set(granted), granted.join(' '), 'what RBAC allows you on this Deployment');

  const nowMs = Date.now();
  // The key rules with the user token TTL as the key's, and the subject token's exp as its expiry.
  const subjectExp = jwtExpiry(subjectToken);
  const lifetimeSeconds = tokenLifetimeSeconds({
    tokenTtlMs: ctx.userTokenTtlMs, expiresAtMs: subjectExp === undefined ? Infinity : subjectExp * 1000, previousValidUntilMs: 0,
  }, dep, 'current', nowMs);
  if (lifetimeSeconds <= 0) throw new InvalidGrant('the subject_token expires now');
  const signingKey = ctx.store.signing.active(nowMs);
  if (!signingKey) throw new TemporarilyUnavailable('the token server has no signing key yet; retry shortly');
  const jkt = dpopBinding(ctx, req.dpop, dep.requireDpop, nowMs);
  const claims = accessTokenClaims({
    issuer: ctx.issuer,
    subject: user.username,
    clientId: USER_CLIENT_ID,
    audiences,
    scope,
    deployment: key,
    lifetimeSeconds,
    nowMs,
    deploymentUid: dep.uid,
    jkt,
  });
  const issuedType = single(params, 'requested_token_type') ?? ACCESS_TOKEN_TYPE;
  const body = await tokenResponse(signingKey, claims, { issued_token_type: issuedType });
  // An audit line: who got what. Never the subject token or the issued one.
  ctx.log.info({ user: user.username, deployment: key, scope, jti: claims.jti, exp: claims.exp }, 'temporary user token issued');
  return { body, claims };
}

export const tokenExchange: Grant = {
  type: TOKEN_EXCHANGE_GRANT,
  repeatable: ['resource'],
  async handle(ctx: ServerContext, req: RequestInfo, params: Params): Promise<TokenResult> {
    try {
      return await exchange(ctx, req, params);
    } catch (err) {
      if (err instanceof ReviewUnavailable) throw new TemporarilyUnavailable(`${err.message}; retry shortly`, 'kube_unavailable');
      throw err;
    }
  },
};
