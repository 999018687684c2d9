/**
 * The controller's side of the credentials Secret (built and read in
 * src/api/secret.ts): whether a Secret is one it controls, and whether the
 * Secret it holds is already what a server-side apply under its field manager
 * would make it, so that an unchanged Secret is never written.
 */
import { FIELD_MANAGER, type SecretObject } from '../api/index.ts';
import type { KubeObject } from '../kube/types.ts';

export function isControlledBy(obj: KubeObject, uid: string | undefined): boolean {
  return obj.metadata?.ownerReferences?.some((r) => r.controller === true && r.uid === uid) ?? false;
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
