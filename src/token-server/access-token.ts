/**
 * The access token profile (RFC 9068) every grant issues, and the token
 * response (RFC 6749 5.1).
 *
 * Claims: iss, sub, client_id, aud, iat, exp, jti, scope, deployment
 * (`namespace/name`), and
 * - for API keys (sub and client_id: the key id) `cred_fp`, a one-way
 *   fingerprint of the secret that was presented (see keys.ts
 *   credentialFingerprint), so that introspection can end a token with its
 *   secret's grace period;
 * - for temporary user tokens (RFC 8693 token exchange; sub: the Kubernetes
 *   user name, client_id: USER_CLIENT_ID) `deployment_uid`, the uid of the
 *   Deployment it was issued for, so that it dies with that Deployment and
 *   is not inherited by one re-created under the same name;
 * - for federated tokens (RFC 8693 exchange of an external OIDC token; sub:
 *   the external subject, client_id: `federated:<namespace>/<name>` of the
 *   FederatedCredential) `federated_issuer`, the external issuer, with
 *   `deployment_uid` and `cred_fp` (a one-way mark of the credential's uid and trust-relevant spec),
 *   so that it dies with its credential or its Deployment;
 * - for a token asked for with a DPoP proof (RFC 9449, any grant) `cnf`
 *   `{jkt}`, the thumbprint of the proof's key, and token_type DPoP in the
 *   response: it is good only with a proof of that key (dpop.ts).
 */
import { randomUUID } from 'node:crypto';
import { signJwt, type JwtKey } from './jwt.ts';

/**
 * client_id of temporary user tokens. RFC 9068 requires a client_id; a token
 * exchange has no registered client (the Kubernetes credential is the only
 * credential), so it names the kind of credential, and lets a resource server
 * tell user tokens from API-key tokens (whose client_id is the key id).
 */
export const USER_CLIENT_ID = 'kubernetes';

export interface AccessTokenClaims {
  iss: string;
  sub: string;
  client_id: string;
  aud: string | string[];
  iat: number;
  exp: number;
  jti: string;
  scope: string;
  deployment: string;
  cred_fp?: string;
  deployment_uid?: string;
  federated_issuer?: string;
  /** RFC 9449 6.1: the thumbprint of the key the token is bound to (DPoP). */
  cnf?: { jkt: string };
}

export interface IssueInput {
  issuer: string;
  subject: string;
  clientId: string;
  audiences: readonly string[];
  scope: string;
  deployment: string;
  lifetimeSeconds: number;
  nowMs: number;
  credentialFingerprint?: string;
  deploymentUid?: string;
  /** The external issuer of a federated token (FEDERATED_ISSUER_CLAIM). */
  federatedIssuer?: string;
  /** The RFC 7638 thumbprint of the DPoP proof's key: the token is DPoP-bound (`cnf.jkt`). */
  jkt?: string;
}

/** The claims of a new token; `aud` is a string when there is one audience (RFC 7519 4.1.3). */
export function accessTokenClaims(input: IssueInput): AccessTokenClaims {
  const iat = Math.floor(input.nowMs / 1000);
  const claims: AccessTokenClaims = {
    iss: input.issuer,
    sub: input.subject,
    client_id: input.clientId,
    aud: input.audiences.length === 1 ? input.audiences[0]! : [...input.audiences],
    iat,
    exp: iat + input.lifetimeSeconds,
    jti: randomUUID(),
    scope: input.scope,
    deployment: input.deployment,
  };
  if (input.credentialFingerprint) claims.cred_fp = input.credentialFingerprint;
  if (input.deploymentUid) claims.deployment_uid = input.deploymentUid;
  if (input.federatedIssuer) claims.federated_issuer = input.federatedIssuer;
  if (input.jkt) claims.cnf = { jkt: input.jkt };
  return claims;
}

/**
 * Signs the token and builds the JSON of a successful token response:
 * synchronously for a key held in the Secret, a promise for one in a token.
 */
export function tokenResponse(key: JwtKey, claims: AccessTokenClaims, extra?: Record<string, string>): string | Promise<string> {
  const token = signJwt(key, claims);
  return typeof token === 'string' ? responseBody(token, claims, extra) : token.then((t) => responseBody(t, claims, extra));
}

function responseBody(token: string, claims: AccessTokenClaims, extra?: Record<string, string>): string {
  // The token is base64url and '.', the scope a list of permission names: no escaping needed.
  let body = `{"access_token":"${token}","token_type":"${claims.cnf ? 'DPoP' : 'Bearer'}","expires_in":${claims.exp - claims.iat},"scope":${JSON.stringify(claims.scope)}`;
  if (extra) for (const [k, v] of Object.entries(extra)) body += `,${JSON.stringify(k)}:${JSON.stringify(v)}`;
  return `${body}}`;
}
