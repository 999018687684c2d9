/**
 * Authorization server metadata (RFC 8414), also served as
 * /.well-known/openid-configuration for clients that only look there. Built
 * once: every URL derives from the configured issuer.
 */
import { PERMISSIONS } from '../api/index.ts';
import { TOKEN_EXCHANGE_GRANT } from '../api/index.ts';
import { DPOP_ALGORITHMS } from './dpop-proof.ts';

export const PATHS = {
  token: '/oauth/token',
  introspect: '/oauth/introspect',
  jwks: '/.well-known/jwks.json',
  authz: '/authz',
  oauthMetadata: '/.well-known/oauth-authorization-server',
  openidConfiguration: '/.well-known/openid-configuration',
} as const;

export function discoveryDocument(issuer: string, grantTypes: readonly string[]): string {
  return JSON.stringify({
    issuer,
    token_endpoint: issuer + PATHS.token,
    jwks_uri: issuer + PATHS.jwks,
    introspection_endpoint: issuer + PATHS.introspect,
    grant_types_supported: grantTypes,
    response_types_supported: [],
    scopes_supported: PERMISSIONS,
    // Token exchange authenticates no client (RFC 8414 `none`): the subject token is the credential.
    token_endpoint_auth_methods_supported: grantTypes.includes(TOKEN_EXCHANGE_GRANT)
      ? ['client_secret_basic', 'client_secret_post', 'none'] : ['client_secret_basic', 'client_secret_post'],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    // RFC 9068 tokens; what verifiers should accept.
    access_token_signing_alg_values_supported: ['ES256', 'EdDSA'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['ES256', 'EdDSA'],
    // RFC 9449 5.1: the token endpoint takes DPoP proofs of these algorithms.
    dpop_signing_alg_values_supported: DPOP_ALGORITHMS,
    claims_supported: ['iss', 'sub', 'client_id', 'aud', 'iat', 'exp', 'jti', 'scope', 'deployment', 'deployment_uid'],
  });
}

/** The issuer without a trailing slash, so that `issuer + path` is a URL. */
export function normalizeIssuer(issuer: string): string {
  return issuer.replace(/\/+$/, '');
}
