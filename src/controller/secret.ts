/**
 * The credentials Secret of an ApiKey, built by pure functions and written
 * with server-side apply under one field manager.
 */
import type { ApiKey } from '../api/index.ts';
import { API_VERSION, FIELD_MANAGER, SECRET_KEYS, SECRET_TYPE } from '../api/index.ts';
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

/**
 * The label and annotation keys this controller's last server-side apply set
 * on `obj`, from its managedFields (`f:metadata.f:labels.f:<key>`).
 */
export function appliedMetadataKeys(obj: KubeObject, manager: string): { labels: string[]; annotations: string[] } {
  const entry = obj.metadata?.managedFields?.find((f) => f.manager === manager && f.operation === 'Apply' && !f.subresource);
  const meta = (entry?.fieldsV1 as { 'f:metadata'?: Record<string, Record<string, unknown> | undefined> } | undefined)?.['f:metadata'];
  const keys = (set: Record<string, unknown> | undefined) => Object.keys(set ?? {}).filter((k) => k.startsWith('f:')).map((k) => k.slice(2));
  return { labels: keys(meta?.['f:labels']), annotations: keys(meta?.['f:annotations']) };
}

/**
 * True when `actual` already is what applying `desired` would make it (so no
 * write is needed): every desired key and value is there, and no label or
 * annotation that an earlier apply set and `desired` no longer lists (one
 * removed from spec.secretTemplate) is left; applying removes those.
 */
export function secretUpToDate(actual: SecretObject, desired: SecretObject): boolean {
  if (actual.type !== desired.type) return false;
  for (const [k, v] of Object.entries(desired.data ?? {})) if (actual.data?.[k] !== v) return false;
  if (Object.keys(actual.data ?? {}).some((k) => !(k in (desired.data ?? {})))) return false;
  const dm = desired.metadata ?? {};
  const am = actual.metadata ?? {};
  for (const [k, v] of Object.entries(dm.labels ?? {})) if (am.labels?.[k] !== v) return false;
  for (const [k, v] of Object.entries(dm.annotations ?? {})) if (am.annotations?.[k] !== v) return false;
  const applied = appliedMetadataKeys(actual, FIELD_MANAGER);
  if (applied.labels.some((k) => !(k in (dm.labels ?? {})) && am.labels?.[k] !== undefined)) return false;
  if (applied.annotations.some((k) => !(k in (dm.annotations ?? {})) && am.annotations?.[k] !== undefined)) return false;
  const ref = dm.ownerReferences?.[0];
  return !!ref && (am.ownerReferences ?? []).some((r) => r.uid === ref.uid && r.controller === true);
}
