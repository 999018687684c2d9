/**
 * A list-watch cache of one resource, built on client-node's Watch rather
 * than its informer, which stops for good on a network error, can hang on a
 * dead connection, does not follow `continue`, passes a label selector to the
 * watch only, and keys by name (so a delete and re-create looks like an
 * update). This one has paged lists, bookmarks, restart with capped backoff
 * and jitter after any error (apiserver restarts, resets, 410 Gone) but not
 * after its own stop, an inactivity timeout that ends a silent watch, a
 * relist that notices an object deleted and re-created under the same name
 * (uid), the same selectors for list and watch, one loop per watched
 * namespace, secondary indexes, and a sync flag for /readyz that only a
 * successful list sets.
 *
 * Handlers receive the cached object itself: never mutate it (copy first).
 */
import { Watch } from '@kubernetes/client-node';
import type { KubeObject } from './types.ts';
import { KubeClient, KubeError } from './client.ts';
import type { Logger } from '../shared/log.ts';

export type Handler<T> = (obj: T, old?: T) => void;

export interface InformerOptions<T> {
  /** `paths.groupVersion(...)`: e.g. `/apis/apikeys.dev/v1alpha1`, or `/api/v1` */
  apiPrefix: string;
  plural: string;
  /** Namespaces to watch; undefined or empty means all (one cluster-wide list-watch). */
  namespaces?: string[];
  labelSelector?: string;
  fieldSelector?: string;
  log: Logger;
  /**
   * What of each object to keep, applied before it is cached: memory with
   * many objects (`withoutManagedFields`). Handlers and readers see the result.
   */
  keep?: (obj: T) => T;
}

/**
 * An object without metadata.managedFields, or with only the entries of
 * `manager` when given: the field owners are often the larger part of a
 * small object, and a cache rarely needs them.
 */
export function withoutManagedFields<T extends { metadata?: { managedFields?: { manager?: string }[] } }>(manager?: string): (obj: T) => T {
  return (obj) => {
    const md = obj.metadata;
    if (!md?.managedFields) return obj;
    const kept = manager === undefined ? [] : md.managedFields.filter((f) => f.manager === manager);
    return { ...obj, metadata: { ...md, managedFields: kept.length ? kept : undefined } };
  };
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** The watch is ended by the server after this long (with jitter), like client-go's 5-10 min. */
const WATCH_SECONDS = 300;
/** With bookmarks every minute, this much silence means a dead connection. */
const INACTIVITY_MS = 150_000;

export function objectKey(obj: { metadata?: { namespace?: string; name?: string } }): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name ?? ''}` : (obj.metadata?.name ?? '');
}

export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: Record<'add' | 'update' | 'delete', Handler<T>[]> = { add: [], update: [], delete: [] };
  private readonly indexers = new Map<string, (obj: T) => string[]>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();
  private readonly scopes: (string | undefined)[];
  private readonly syncedScopes = new Set<string>();
  private readonly aborts = new Set<AbortController>();
  private readonly sleeps = new Set<() => void>();
  private stopped = false;
  private loops: Promise<void>[] = [];
  private syncWaiters: (() => void)[] = [];
  /** Wall time of the last successful list or watch event, for health checks. */
  lastContact = 0;
  lastError: string | undefined;

  private readonly client: KubeClient;
  private readonly opts: InformerOptions<T>;

  constructor(client: KubeClient, opts: InformerOptions<T>) {
    this.client = client;
    this.opts = opts;
    this.scopes = opts.namespaces?.length ? opts.namespaces : [undefined];
  }

  on(event: 'add' | 'update' | 'delete', handler: Handler<T>): void {
    this.handlers[event].push(handler);
  }

  addIndex(name: string, fn: (obj: T) => string[]): void {
    this.indexers.set(name, fn);
    this.indexes.set(name, new Map());
  }

  byIndex(name: string, value: string): T[] {
    const keys = this.indexes.get(name)?.get(value);
    if (!keys) return [];
    const out: T[] = [];
    for (const k of keys) {
      const o = this.store.get(k);
      if (o) out.push(o);
    }
    return out;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string): T[] {
    const all = [...this.store.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  get size(): number {
    return this.store.size;
  }

  hasSynced(): boolean {
    return this.syncedScopes.size === this.scopes.length;
  }

  waitForSync(): Promise<void> {
    if (this.hasSynced()) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    this.stopped = false;
    this.loops = this.scopes.map((ns) => this.loop(ns));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const a of this.aborts) a.abort();
    for (const wake of this.sleeps) wake();
    await Promise.allSettled(this.loops);
  }

  private collectionPath(ns: string | undefined): string {
    return ns ? `${this.opts.apiPrefix}/namespaces/${ns}/${this.opts.plural}` : `${this.opts.apiPrefix}/${this.opts.plural}`;
  }

  private async loop(ns: string | undefined): Promise<void> {
    let resourceVersion = '';
    let backoff = 0;
    const scope = ns ?? '';
    const log = this.opts.log.child({ resource: this.opts.plural, namespace: ns ?? '*' });
    while (!this.stopped) {
      try {
        if (!resourceVersion) {
          resourceVersion = await this.relist(ns);
          if (!this.syncedScopes.has(scope)) {
            this.syncedScopes.add(scope);
            if (this.hasSynced()) for (const w of this.syncWaiters.splice(0)) w();
          }
        }
        const result = await this.watchOnce(ns, resourceVersion);
        resourceVersion = result.resourceVersion;
        if (result.gone) {
          log.debug('watch expired (410 Gone); relisting');
          resourceVersion = '';
        }
        if (result.events > 0 || result.gone) backoff = 0;
        this.lastError = undefined;
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof KubeError && err.status === 410) {
          resourceVersion = '';
          continue;
        }
        backoff = Math.min(backoff ? backoff * 2 : BACKOFF_BASE_MS, BACKOFF_MAX_MS);
        const delay = backoff / 2 + Math.random() * (backoff / 2);
        this.lastError = (err as Error).message;
        log.warn({ err, retryInMs: Math.round(delay) }, 'list/watch failed; retrying');
        await this.sleep(delay);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => { clearTimeout(t); this.sleeps.delete(wake); resolve(); };
      const t = setTimeout(wake, ms);
      this.sleeps.add(wake);
    });
  }

  private async relist(ns: string | undefined): Promise<string> {
    const list = await this.client.list<T>(this.collectionPath(ns), {
      labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector,
    });
    this.lastContact = Date.now();
    const seen = new Set<string>();
    for (const item of list.items) {
      seen.add(objectKey(item));
      this.upsert(item);
    }
    for (const [key, obj] of this.store) {
      if ((ns === undefined || obj.metadata?.namespace === ns) && !seen.has(key)) this.remove(obj);
    }
    return list.metadata.resourceVersion ?? '';
  }

  private watchOnce(ns: string | undefined, resourceVersion: string):
  Promise<{ resourceVersion: string; gone: boolean; events: number }> {
    return new Promise((resolve, reject) => {
      let rv = resourceVersion;
      let gone = false;
      let events = 0;
      let controller: AbortController | undefined;
      let finished = false;
      const watch = new Watch(this.client.kc);
      (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = INACTIVITY_MS;
      const done = (err: unknown) => {
        finished = true;
        if (controller) this.aborts.delete(controller);
        const e = err as { name?: string; statusCode?: number } | null;
        if (!e || e.name === 'AbortError' || e.name === 'TimeoutError' || this.stopped) {
          resolve({ resourceVersion: rv, gone, events });
        } else if (e.statusCode === 410) {
          resolve({ resourceVersion: '', gone: true, events });
        } else {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      };
      watch.watch(
        this.collectionPath(ns),
        {
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: WATCH_SECONDS + Math.floor(Math.random() * WATCH_SECONDS),
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
        },
        (type: string, obj: T & { code?: number }) => {
          this.lastContact = Date.now();
          switch (type) {
            case 'ADDED':
            case 'MODIFIED':
              events++;
              this.upsert(obj);
              break;
            case 'DELETED':
              events++;
              this.remove(obj);
              break;
            case 'BOOKMARK':
              break;
            case 'ERROR':
              if (obj.code === 410) gone = true;
              controller?.abort();
              return;
            default:
              return;
          }
          const v = obj.metadata?.resourceVersion;
          if (v) rv = v;
        },
        done,
      ).then((c) => {
        controller = c;
        if (this.stopped) c.abort();
        else if (!finished) this.aborts.add(c);
      }, reject);
    });
  }

  private emit(event: 'add' | 'update' | 'delete', obj: T, old?: T): void {
    for (const h of this.handlers[event]) {
      try {
        h(obj, old);
      } catch (err) {
        this.opts.log.error({ err, key: objectKey(obj) }, 'informer handler failed');
      }
    }
  }

  private index(key: string, obj: T | undefined, old: T | undefined): void {
    for (const [name, fn] of this.indexers) {
      const idx = this.indexes.get(name)!;
      for (const v of old ? fn(old) : []) {
        const set = idx.get(v);
        set?.delete(key);
        if (set?.size === 0) idx.delete(v);
      }
      for (const v of obj ? fn(obj) : []) {
        let set = idx.get(v);
        if (!set) idx.set(v, (set = new Set()));
        set.add(key);
      }
    }
  }

  private upsert(received: T): void {
    const obj = this.opts.keep ? this.opts.keep(received) : received;
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    this.store.set(key, obj);
    this.index(key, obj, old);
    if (!old) {
      this.emit('add', obj);
    } else if (old.metadata?.uid !== obj.metadata?.uid) {
      // Deleted and re-created while we were not watching: two events, not an update.
      this.emit('delete', old);
      this.emit('add', obj);
    } else {
      this.emit('update', obj, old);
    }
  }

  private remove(obj: T): void {
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (!old) return;
    this.store.delete(key);
    this.index(key, undefined, old);
    this.emit('delete', old);
  }
}
