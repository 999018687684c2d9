/**
 * The credentials Secret of an ApiKey, the one contract the controller, the
 * token server's users, the kubectl plugin and the tests share: its name,
 * labels, type and four keys, the object built from an ApiKey, and reading
 * the credentials back out of it. Pure functions; the controller writes the
 * object with server-side apply under one field manager.
 */
import type { KubeObject } from '../kube/types.ts';
import type { ApiKey } from './generated.ts';
import { API_VERSION } from './names.ts';

export const SECRET_TYPE = 'apikeys.dev/api-key';

/** The four keys of a credentials Secret. */
export const SECRET_KEYS = {
  id: 'API_KEY_ID',
  secret: 'API_KEY_SECRET',
  tokenUrl: 'TOKEN_URL',
  audience: 'AUDIENCE',
} as const;

/** Labels of every Secret the controller writes (credentials and signing keys). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'apikey-operator';
/** Label of a credentials Secret: the name of its ApiKey. */
export const APIKEY_LABEL = 'apikeys.dev/apikey';

/** A core/v1 Secret as this project reads and writes it (data base64-encoded). */
export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

/** The four values of a credentials Secret, decoded. */
export interface Credentials {
  keyId: string;
  secret: string;
  tokenUrl: string;
  audience: string;
}

/** The Secret the spec names: spec.secretName, else the ApiKey's own name. */
export function secretNameOf(ak: ApiKey): string {
  return ak.spec.secretName ?? ak.metadata.name!;
}

/** The Secret the controller reports it wrote (status.secretName), else the one the spec names. */
export function reportedSecretNameOf(ak: ApiKey): string {
  return ak.status?.secretName ?? secretNameOf(ak);
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** The Secret an ApiKey should have: the four keys, its template's metadata, and a controller reference. */
export function credentialsSecret(ak: ApiKey, c: Credentials): SecretObject & { metadata: NonNullable<SecretObject['metadata']> } {
  const tpl = ak.spec.secretTemplate ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: secretNameOf(ak),
      namespace: ak.metadata.namespace,
      labels: { ...tpl.labels, [MANAGED_BY_LABEL]: MANAGED_BY, [APIKEY_LABEL]: ak.metadata.name! },
      annotations: { ...tpl.annotations },
      ownerReferences: [credentialsOwnerRef(ak)],
    },
    type: SECRET_TYPE,
    data: {
      [SECRET_KEYS.id]: b64(c.keyId),
      [SECRET_KEYS.secret]: b64(c.secret),
      [SECRET_KEYS.tokenUrl]: b64(c.tokenUrl),
      [SECRET_KEYS.audience]: b64(c.audience),
    },
  };
}

/** The controller reference of an ApiKey's credentials Secret. */
export function credentialsOwnerRef(ak: ApiKey) {
  return { apiVersion: API_VERSION, kind: 'ApiKey', name: ak.metadata.name!, uid: ak.metadata.uid!, controller: true, blockOwnerDeletion: true };
}

/** One decoded value of a Secret; undefined when the key is absent. */
export function readCredential(secret: SecretObject, key: string): string | undefined {
  const v = secret.data?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

/** The four values of a credentials Secret, each '' when absent. */
export function credentialsOf(secret: SecretObject): Credentials {
  const get = (k: string) => readCredential(secret, k) ?? '';
  return { keyId: get(SECRET_KEYS.id), secret: get(SECRET_KEYS.secret), tokenUrl: get(SECRET_KEYS.tokenUrl), audience: get(SECRET_KEYS.audience) };
}
