/** The contract's names, the credentials Secret, and the resource types generated from the CRD schemas. */
export type * from './generated.ts';
export {
  ACCESS_TOKEN_TYPE, API_VERSION, APIKEYS, AUDIENCE_CLAIMS, DEFAULT_EXPIRY_WARNINGS, DEFAULT_FEDERATED_TOKEN_TTL, DEFAULT_GRACE_PERIOD, DEFAULT_TOKEN_TTL, DEPLOYMENTS,
  EXPIRING_CONDITION, FEDERATED_CLIENT_PREFIX, FEDERATED_CREDENTIALS, FEDERATED_ISSUER_CLAIM, FIELD_MANAGER, GROUP, ID_TOKEN_TYPE, isPermission,
  JWT_TOKEN_TYPE, LEASE_NAME, MAX_TOKEN_TTL_SECONDS, PERMISSIONS, ROTATE_ANNOTATION, SIGNING_KEYS_SECRET,
  SIGNING_KEYS_SECRET_TYPE, TOKEN_EXCHANGE_GRANT, VERSION, type Permission,
} from './names.ts';
export {
  APIKEY_LABEL, credentialsOf, credentialsSecret, MANAGED_BY, MANAGED_BY_LABEL, readCredential, reportedSecretNameOf,
  SECRET_KEYS, SECRET_TYPE, secretNameOf, type Credentials, type SecretObject,
} from './secret.ts';
