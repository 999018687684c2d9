/**
 * What a cache keeps of each object (an informer's `keep`): with thousands of
 * objects the parts nobody reads are most of the memory. Each function
 * returns a trimmed copy, or the object itself when there is nothing to trim;
 * the received object is never changed.
 */
import type { KubeObject } from './types.ts';

type Trimmable = KubeObject;
type ManagedFieldsEntry = NonNullable<NonNullable<KubeObject['metadata']>['managedFields']>[number];

export type Keep<T> = (obj: T) => T;

/** kubectl apply's copy of the whole object as last applied: often as large as the object itself. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/** Applies each of `keeps` in turn. */
export function keepAll<T>(...keeps: Keep<T>[]): Keep<T> {
  return (obj) => keeps.reduce((o, keep) => keep(o), obj);
}

/**
 * An object without metadata.managedFields, or with only the entries of
 * `manager` when given: the field owners are often the larger part of a
 * small object, and a cache rarely needs them.
 */
export function withoutManagedFields<T extends Trimmable>(manager?: string): Keep<T> {
  return (obj) => {
    const md = obj.metadata;
    if (!md?.managedFields) return obj;
    const kept = manager === undefined ? [] : md.managedFields.filter((f) => f.manager === manager);
    return { ...obj, metadata: { ...md, managedFields: kept.length ? kept : undefined } };
  };
}

/**
 * Only `manager`'s field-owner entries, and of each only the label and
 * annotation keys it owns (`f:metadata.f:labels`, `f:metadata.f:annotations`):
 * what telling which metadata an apply or a create set needs, without the
 * owners of every other field.
 */
export function withOwnMetadataFields<T extends Trimmable>(manager: string): Keep<T> {
  return (obj) => {
    const md = obj.metadata;
    if (!md?.managedFields) return obj;
    const kept = md.managedFields.filter((f) => f.manager === manager).map((f) => {
      const meta = (f.fieldsV1 as { 'f:metadata'?: Record<string, unknown> } | undefined)?.['f:metadata'];
      const own: Record<string, unknown> = {};
      if (meta?.['f:labels']) own['f:labels'] = meta['f:labels'];
      if (meta?.['f:annotations']) own['f:annotations'] = meta['f:annotations'];
      const entry: ManagedFieldsEntry = { manager: f.manager, operation: f.operation };
      if (f.subresource) entry.subresource = f.subresource;
      if (Object.keys(own).length) entry.fieldsV1 = { 'f:metadata': own };
      return entry;
    });
    return { ...obj, metadata: { ...md, managedFields: kept.length ? kept : undefined } };
  };
}

/** An object without kubectl apply's last-applied-configuration annotation, which neither program reads. */
export function withoutLastApplied<T extends Trimmable>(): Keep<T> {
  return (obj) => {
    const annotations = obj.metadata?.annotations;
    if (!annotations || !(LAST_APPLIED_ANNOTATION in annotations)) return obj;
    const { [LAST_APPLIED_ANNOTATION]: _dropped, ...rest } = annotations;
    return { ...obj, metadata: { ...obj.metadata, annotations: Object.keys(rest).length ? rest : undefined } };
  };
}
