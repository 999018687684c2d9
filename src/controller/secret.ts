/**
 * The credentials Secret of an ApiKey, built by pure functions and written
 * with server-side apply under one field manager.
 */
import type { ApiKey } from '../api/index.ts';
import { API_VERSION, SECRET_KEYS, SECRET_TYPE } from '../api/index.ts';
import type { KubeObject } from '../kube/types.ts';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'apikey-operator';
export const APIKEY_LABEL = 'apikeys.dev/apikey';

export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

export interface Credentials {
  keyId: string;
  secret: string;
  tokenUrl: string;
  audience: string;
}

export function secretNameOf(ak: ApiKey): string {
  return ak.spec.secretName ?? ak.metadata.name!;
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
      ownerReferences: [{
        apiVersion: API_VERSION, kind: 'ApiKey', name: ak.metadata.name!, uid: ak.metadata.uid!,
        controller: true, blockOwnerDeletion: true,
      }],
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

export function isControlledBy(obj: KubeObject, uid: string | undefined): boolean {
  return obj.metadata?.ownerReferences?.some((r) => r.controller === true && r.uid === uid) ?? false;
}

export function readCredential(secret: SecretObject, key: string): string | undefined {
  const v = secret.data?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

/** True when `actual` already has everything `desired` applies (so no write is needed). */
export function secretUpToDate(actual: SecretObject, desired: SecretObject): boolean {
  if (actual.type !== desired.type) return false;
  for (const [k, v] of Object.entries(desired.data ?? {})) if (actual.data?.[k] !== v) return false;
  if (Object.keys(actual.data ?? {}).some((k) => !(k in (desired.data ?? {})))) return false;
  const dm = desired.metadata ?? {};
  const am = actual.metadata ?? {};
  for (const [k, v] of Object.entries(dm.labels ?? {})) if (am.labels?.[k] !== v) return false;
  for (const [k, v] of Object.entries(dm.annotations ?? {})) if (am.annotations?.[k] !== v) return false;
  const ref = dm.ownerReferences?.[0];
  return !!ref && (am.ownerReferences ?? []).some((r) => r.uid === ref.uid && r.controller === true);
}
