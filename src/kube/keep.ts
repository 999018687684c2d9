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
      if (Object.keys(own).length) entry.fieldsV1 = sharedFields({ 'f:metadata': own });
      return entry;
    });
    return { ...obj, metadata: { ...md, managedFields: kept.length ? kept : undefined } };
  };
}

/**
 * One frozen copy of each shape of kept field owners: every credentials Secret
 * the controller wrote has the same label and annotation keys, so one copy
 * serves them all (about 450 bytes a Secret). Bounded like the string table.
 */
const fieldShapes = new Map<string, object>();
function sharedFields(fields: object): object {
  const key = JSON.stringify(fields);
  const known = fieldShapes.get(key);
  if (known) return known;
  if (fieldShapes.size >= INTERN_MAX) fieldShapes.clear();
  const frozen = deepFreeze(JSON.parse(key) as object);
  fieldShapes.set(key, frozen);
  return frozen;
}

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (v !== null && typeof v === 'object') deepFreeze(v as object);
  return Object.freeze(o);
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

/**
 * Field names whose string values repeat across the objects of a cache: the
 * type fields, the namespace, a condition's type, status, reason and message,
 * the field owners' manager and operation, timestamps of a burst, a key's
 * durations and permissions, a Deployment's audiences, the value of the
 * managed-by label.
 */
const INTERNED_FIELDS = new Set([
  'apiVersion', 'kind', 'namespace', 'type', 'status', 'reason', 'message', 'manager', 'operation', 'fieldsType',
  'lastTransitionTime', 'time', 'creationTimestamp', 'gracePeriod', 'tokenTTL', 'maxTokenTTL', 'app.kubernetes.io/managed-by',
]);
/** Arrays of strings whose elements repeat. */
const INTERNED_LISTS = new Set(['permissions', 'audiences', 'finalizers']);
/**
 * The entries of a Secret's `data` that may be shared: the token URL and the
 * audience, which are no secret. Nothing else of `data` or `stringData` is
 * ever put in the table, so no secret outlives its object there.
 */
const INTERNED_DATA = new Set(['TOKEN_URL', 'AUDIENCE']);
/** The table's size; when full it starts again, so old timestamps do not crowd out what repeats now. */
const INTERN_MAX = 8192;

/**
 * One table of strings for every cache that keeps `withInternedStrings`: each
 * object parsed from the API has its own copy of every string, so 100,000
 * ApiKeys hold 100,000 copies of "apikeys.dev/v1", of their namespace and of
 * each condition's reason and message. Sharing them saved about 430 bytes per
 * ApiKey and 440 per credentials Secret (of about 1,500 and 1,700).
 */
const internTable = new Map<string, string>();

function intern(value: string): string {
  const known = internTable.get(value);
  if (known !== undefined) return known;
  if (internTable.size >= INTERN_MAX) internTable.clear();
  internTable.set(value, value);
  return value;
}

function internFields(obj: Record<string, unknown>, allowed: Set<string>): void {
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    if (typeof value === 'string') {
      if (allowed.has(key)) obj[key] = intern(value);
    } else if (Array.isArray(value)) {
      if (INTERNED_LISTS.has(key)) {
        for (let i = 0; i < value.length; i++) if (typeof value[i] === 'string') value[i] = intern(value[i] as string);
      } else {
        for (const item of value) if (item !== null && typeof item === 'object') internFields(item as Record<string, unknown>, INTERNED_FIELDS);
      }
    } else if (value !== null && typeof value === 'object') {
      if (key === 'data') internFields(value as Record<string, unknown>, INTERNED_DATA);
      else if (key !== 'stringData') internFields(value as Record<string, unknown>, INTERNED_FIELDS);
    }
  }
}

/**
 * The object with its repeating strings (INTERNED_FIELDS) shared with the
 * other cached objects. The strings are replaced in place: an equal string is
 * indistinguishable from the one it replaces, so no reader can tell, and the
 * object stays equal (`toEqual`) to what it was. Last in a keepAll, after the
 * copies the trimming makes.
 */
export function withInternedStrings<T extends Trimmable>(): Keep<T> {
  return (obj) => {
    internFields(obj as unknown as Record<string, unknown>, INTERNED_FIELDS);
    return obj;
  };
}

/** Whether `value` is in the table (for tests: what is shared, and that no secret ever is). */
export const isInterned = (value: string): boolean => internTable.has(value);
