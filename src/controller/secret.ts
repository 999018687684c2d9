/**
 * The controller's side of the credentials Secret (built and read in
 * src/api/secret.ts): whether a Secret is one it controls, and whether the
 * Secret it holds is already what a server-side apply under its field manager
 * would make it, so that an unchanged Secret is never written.
 *
 * A key's first Secret is created (POST), not applied, so its fields belong
 * to the field manager's Update entry; a later apply shares them but cannot
 * remove them, so the keys the create set are removed with a patch instead
 * (`createdMetadataLeft`).
 */
import { FIELD_MANAGER, type SecretObject } from '../api/index.ts';
import type { KubeObject } from '../kube/types.ts';

export function isControlledBy(obj: KubeObject, uid: string | undefined): boolean {
  return obj.metadata?.ownerReferences?.some((r) => r.controller === true && r.uid === uid) ?? false;
}

interface MetadataKeys { labels: string[]; annotations: string[] }

/**
 * The label and annotation keys `manager` set on `obj` by its last
 * server-side apply (or, with `Update`, by its create and updates), from its
 * managedFields (`f:metadata.f:labels.f:<key>`).
 */
export function appliedMetadataKeys(obj: KubeObject, manager: string, operation: 'Apply' | 'Update' = 'Apply'): MetadataKeys {
  const entry = obj.metadata?.managedFields?.find((f) => f.manager === manager && f.operation === operation && !f.subresource);
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
  const left = (operation: 'Apply' | 'Update') => metadataLeft(actual, desired, appliedMetadataKeys(actual, FIELD_MANAGER, operation));
  if ([left('Apply'), left('Update')].some((l) => l.labels.length || l.annotations.length)) return false;
  const ref = dm.ownerReferences?.[0];
  return !!ref && (am.ownerReferences ?? []).some((r) => r.uid === ref.uid && r.controller === true);
}

/** Of `set`, the keys `actual` still has that `desired` does not list. */
function metadataLeft(actual: SecretObject, desired: SecretObject, set: MetadataKeys): MetadataKeys {
  const dm = desired.metadata ?? {};
  const am = actual.metadata ?? {};
  return {
    labels: set.labels.filter((k) => !(k in (dm.labels ?? {})) && am.labels?.[k] !== undefined),
    annotations: set.annotations.filter((k) => !(k in (dm.annotations ?? {})) && am.annotations?.[k] !== undefined),
  };
}

/**
 * The labels and annotations the Secret's create set that `desired` no
 * longer lists, or undefined when there are none: an apply leaves them, the
 * create owns them.
 */
export function createdMetadataLeft(actual: SecretObject, desired: SecretObject): MetadataKeys | undefined {
  const left = metadataLeft(actual, desired, appliedMetadataKeys(actual, FIELD_MANAGER, 'Update'));
  return left.labels.length || left.annotations.length ? left : undefined;
}
