/** Names fixed by the contract: the API group, resources, annotations, and defaults. */
export const GROUP = 'apikeys.dev';
export const VERSION = 'v1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const DEPLOYMENTS = 'deployments';
export const APIKEYS = 'apikeys';
export const FEDERATED_CREDENTIALS = 'federatedcredentials';
export const AUDIENCE_CLAIMS = 'audienceclaims';
export const FIELD_MANAGER = 'apikey-operator';
export const ROTATE_ANNOTATION = 'apikeys.dev/rotate';
export const SIGNING_KEYS_SECRET = 'apikey-operator-signing-keys';
export const SIGNING_KEYS_SECRET_TYPE = 'apikeys.dev/signing-keys';
export const LEASE_NAME = 'apikey-operator-controller';
/** The ApiKey condition that warns ahead of spec.expiresAt (controller/expiry.ts). */
export const EXPIRING_CONDITION = 'Expiring';
/** The controller's --expiry-warnings default: 30 days, 7 days and 1 day before spec.expiresAt. */
export const DEFAULT_EXPIRY_WARNINGS = '720h,168h,24h';

export const PERMISSIONS = ['deploy', 'read'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export function isPermission(s: string): s is Permission {
  return (PERMISSIONS as readonly string[]).includes(s);
}

/** RFC 8693 names: the grant type and the token type of a Kubernetes bearer token. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** RFC 8693 token types of an external OIDC token (federation); a JWT is also what a Kubernetes token is. */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';

/**
 * A federated token's client_id is `federated:<namespace>/<name>` of its
 * FederatedCredential, and its claim `federated_issuer` the external issuer.
 */
export const FEDERATED_CLIENT_PREFIX = 'federated:';
export const FEDERATED_ISSUER_CLAIM = 'federated_issuer';
export const DEFAULT_FEDERATED_TOKEN_TTL = '1h';

export const DEFAULT_TOKEN_TTL = '24h';
export const DEFAULT_GRACE_PERIOD = '1h';
export const MAX_TOKEN_TTL_SECONDS = 24 * 3600;
