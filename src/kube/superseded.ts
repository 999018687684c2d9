/**
 * Object versions this process has written over. When a controller writes an
 * object, the informer still holds the version the write replaced until the
 * write's own watch event arrives (and enqueues the key again). Reconciling
 * that cached version would only end in a 409, so a controller asks
 * `isStale` first and skips it.
 *
 * A key is tracked from its first write until the informer delivers the
 * latest version written (or the object is deleted); nothing is kept for
 * objects at rest.
 */
import { objectKey } from './informer.ts';
import type { KubeObject } from './types.ts';

export class SupersededVersions {
  private readonly byKey = new Map<string, { stale: Set<string>; latest: string }>();

  /** Records that `before` was replaced by our write, which answered `after`. */
  record(before: KubeObject, after: KubeObject): void {
    const key = objectKey(before);
    const entry = this.byKey.get(key) ?? { stale: new Set<string>(), latest: '' };
    entry.stale.add(before.metadata!.resourceVersion!);
    entry.latest = after.metadata!.resourceVersion!;
    this.byKey.set(key, entry);
  }

  /** Called for every version the informer delivers: once the latest write is seen, nothing is stale. */
  observe(obj: KubeObject): void {
    const key = objectKey(obj);
    if (this.byKey.get(key)?.latest === obj.metadata?.resourceVersion) this.byKey.delete(key);
  }

  forget(obj: KubeObject): void {
    this.byKey.delete(objectKey(obj));
  }

  isStale(obj: KubeObject | undefined): boolean {
    return !!obj && !!this.byKey.get(objectKey(obj))?.stale.has(obj.metadata?.resourceVersion ?? '');
  }

  /** Keys tracked now (for tests). */
  get size(): number {
    return this.byKey.size;
  }
}
