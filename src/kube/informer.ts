/**
 * A list-watch cache of one resource, on KubeClient's watch rather than
 * client-node's informer, which stops for good on a network error, can hang on a
 * dead connection, does not follow `continue`, passes a label selector to the
 * watch only, and keys by name (so a delete and re-create looks like an
 * update). This one has paged lists, bookmarks, capped and jittered backoff
 * before every restart of a watch (reset only by a healthy watch, like
 * client-go's reflector), an idle timeout that ends a watch that went silent
 * past the server's own end of it, a relist after 410 Gone that notices an
 * object deleted and re-created under the same name (uid), the same
 * selectors for list and watch, one loop per watched namespace, secondary
 * indexes, and a sync flag for /readyz that only a successful list sets.
 * It also records when each watched scope last heard from the apiserver (a
 * successful list, the answer to a watch request, any watch event including
 * a bookmark), for the token server's bounded staleness (staleness.ts there);
 * `timingForStaleness` shortens the watches so that a healthy idle cluster is
 * heard from well within a bound.
 * With `health`, every list and watch tells whether the apiserver still
 * accepts the credential (a 401 or 403 is a fault, not a partition).
 *
 * Handlers receive the cached object itself: never mutate it (copy first).
 */
import { performance } from 'node:perf_hooks';
import type { KubeObject } from './types.ts';
import { Backoff } from './backoff.ts';
import { KubeClient, KubeError } from './client.ts';
import type { Logger } from '../shared/log.ts';
import type { CredentialHealth } from './credential-health.ts';

export type Handler<T> = (obj: T, old?: T) => void;

/**
 * When a watch ends and how soon the next one starts. The defaults are for
 * production; tests shorten them to see the same behaviour in seconds.
 */
export interface WatchTiming {
  /**
   * The server ends each watch after a `timeoutSeconds` drawn from this
   * range, so that many watches do not restart together. The apiserver sends
   * a bookmark only when the resource's resourceVersion moved, so a watch of
   * a quiet resource can be silent for its whole life: this is the normal
   * end of a silent watch.
   */
  timeoutSeconds: [min: number, max: number];
  /**
   * A watch that received no byte for this long is aborted as dead. Default:
   * its `timeoutSeconds` plus 15 s, i.e. the server should have ended it by
   * then. It stays below the 300 s body timeout of the undici dispatcher,
   * which would otherwise end it as an error. The timer restarts with every
   * chunk of the response: it is not a total deadline.
   */
  idleMs?: number;
  /** A watch that lasted this long, or delivered an event, is healthy: it resets the backoff. */
  healthyMs: number;
  /** First backoff step before a restart; it doubles after each unhealthy watch or failure. */
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_WATCH_TIMING: WatchTiming = {
  timeoutSeconds: [200, 280],
  healthyMs: 10_000,
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
};

/**
 * Watch timing under which a healthy apiserver is heard from at least every
 * third of `boundMs`, even on an idle cluster. The apiserver's bookmarks do
 * not guarantee it (see WatchTiming.timeoutSeconds), so the server is asked
 * to end each watch after a quarter to a third of the bound: the next watch
 * request's answer is the proof of life. A watch that short is healthy when
 * it lasted most of its own timeout, so a healthy restart waits the base
 * backoff step only.
 */
export function timingForStaleness(boundMs: number): Partial<WatchTiming> {
  const [defMin, defMax] = DEFAULT_WATCH_TIMING.timeoutSeconds;
  const max = Math.max(1, Math.min(defMax, Math.floor(boundMs / 3000)));
  const min = Math.max(1, Math.min(defMin, Math.floor(boundMs / 4000), max));
  return { timeoutSeconds: [min, max], healthyMs: Math.min(DEFAULT_WATCH_TIMING.healthyMs, min * 800) };
}

/** The idle window of a watch asked to last `timeoutSeconds`. */
export function idleWindowMs(timing: WatchTiming, timeoutSeconds: number): number {
  return timing.idleMs ?? timeoutSeconds * 1000 + 15_000;
}

export interface InformerOptions<T> {
  /** `paths.groupVersion(...)`: e.g. `/apis/apikeys.dev/v1`, or `/api/v1` */
  apiPrefix: string;
  plural: string;
  /** Namespaces to watch; undefined or empty means all (one cluster-wide list-watch). */
  namespaces?: string[];
  labelSelector?: string;
  fieldSelector?: string;
  log: Logger;
  watch?: Partial<WatchTiming>;
  /**
   * What of each object to keep, applied before it is cached: memory with
   * many objects (keep.ts). Handlers and readers see the result.
   */
  keep?: (obj: T) => T;
  /** Told how each list and watch request was answered, for readiness when the credential is refused (credential-health.ts). */
  health?: CredentialHealth;
}

/** How one watch request ended (other than by an exception). */
interface WatchEnd {
  /** Where the next watch resumes; '' after 410 Gone (relist). */
  resourceVersion: string;
  gone: boolean;
  /** Aborted by the idle timeout. */
  idle: boolean;
  events: number;
  ms: number;
}

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
  /** By scope ('' for all namespaces): when (performance.now(), monotonic ms) the apiserver last answered a list or watch of it, or sent an event. */
  private readonly heard = new Map<string, number>();
  lastError: string | undefined;

  private readonly client: KubeClient;
  private readonly opts: InformerOptions<T>;
  private readonly timing: WatchTiming;

  constructor(client: KubeClient, opts: InformerOptions<T>) {
    this.client = client;
    this.opts = opts;
    this.timing = { ...DEFAULT_WATCH_TIMING, ...opts.watch };
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

  /**
   * Since when (performance.now(): monotonic, so a step of the wall clock
   * neither trips nor hides staleness) every watched scope has heard from
   * the apiserver: the oldest of the scopes' last contacts; 0 until each
   * scope has been heard from once.
   */
  lastHeard(): number {
    let oldest = Infinity;
    for (const ns of this.scopes) oldest = Math.min(oldest, this.heard.get(ns ?? '') ?? 0);
    return oldest;
  }

  private hear(ns: string | undefined): void {
    this.heard.set(ns ?? '', performance.now());
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
    const timing = this.timing;
    const backoff = new Backoff(timing.backoffBaseMs, timing.backoffMaxMs);
    let resourceVersion = '';
    const scope = ns ?? '';
    const log = this.opts.log.child({ resource: this.opts.plural, namespace: ns ?? '*' });
    const source = `${this.opts.plural}/${ns ?? '*'}`;
    while (!this.stopped) {
      // Every restart waits a backoff step, whatever ended the watch: a server
      // or proxy that ends watches at once must not get a tight loop.
      let healthy = false;
      let problem: { err?: unknown; message: string } | undefined;
      try {
        if (!resourceVersion) {
          resourceVersion = await this.relist(ns);
          this.opts.health?.report(source);
          if (!this.syncedScopes.has(scope)) {
            this.syncedScopes.add(scope);
            if (this.hasSynced()) for (const w of this.syncWaiters.splice(0)) w();
          }
        }
        const end = await this.watchOnce(ns, resourceVersion);
        resourceVersion = end.resourceVersion;
        healthy = !end.idle && (end.events > 0 || end.ms >= timing.healthyMs);
        // 410 Gone is the normal end of a watch that fell behind: relist, without a warning.
        if (end.gone) log.debug('watch expired (410 Gone); relisting');
        else if (end.idle) problem = { message: `the watch received nothing for ${Math.round(end.ms / 1000)}s` };
        else if (!healthy) problem = { message: `the watch ended after ${end.ms}ms with no event` };
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof KubeError && err.status === 410) {
          resourceVersion = '';
        } else {
          problem = { err, message: (err as Error).message };
          this.opts.health?.report(source, err);
        }
      }
      if (this.stopped) break;
      if (healthy) backoff.reset();
      const delay = backoff.next();
      this.lastError = problem?.message;
      if (problem) log.warn({ err: problem.err, reason: problem.message, retryInMs: Math.round(delay) }, 'list/watch failed; retrying');
      await this.sleep(delay);
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
    const seen = new Set<string>();
    // Page by page: each object is trimmed (`keep`) and cached before the next page is read.
    const resourceVersion = await this.client.listPages<T>(this.collectionPath(ns), {
      labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector,
    }, (items) => {
      for (const item of items) {
        seen.add(objectKey(item));
        this.upsert(item);
      }
    });
    this.hear(ns);
    for (const [key, obj] of this.store) {
      if ((ns === undefined || obj.metadata?.namespace === ns) && !seen.has(key)) this.remove(obj);
    }
    return resourceVersion ?? '';
  }

  private async watchOnce(ns: string | undefined, resourceVersion: string): Promise<WatchEnd> {
    const [min, max] = this.timing.timeoutSeconds;
    const timeoutSeconds = min + Math.floor(Math.random() * (max - min + 1));
    const idleMs = idleWindowMs(this.timing, timeoutSeconds);
    const started = Date.now();
    const end: WatchEnd = { resourceVersion, gone: false, idle: false, events: 0, ms: 0 };
    const controller = new AbortController();
    this.aborts.add(controller);
    if (this.stopped) controller.abort();
    // The idle timeout runs from the request on and restarts with every chunk of the response.
    let timer: NodeJS.Timeout | undefined;
    const stillAlive = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { end.idle = true; controller.abort(); }, idleMs);
      timer.unref();
    };
    try {
      stillAlive();
      const body = await this.client.watch(this.collectionPath(ns), {
        resourceVersion, allowWatchBookmarks: true, timeoutSeconds,
        labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector,
      }, controller.signal);
      this.opts.health?.report(`${this.opts.plural}/${ns ?? '*'}`);
      this.hear(ns);
      const decoder = new TextDecoder();
      let pending = '';
      read: for await (const chunk of body) {
        stillAlive();
        pending += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (!this.onWatchEvent(line, end, ns)) break read;
        }
      }
    } catch (err) {
      // Aborted by stop() or by the idle timeout: an ordinary end; anything else is a failure.
      if (!controller.signal.aborted) throw err;
    } finally {
      clearTimeout(timer);
      controller.abort();
      this.aborts.delete(controller);
    }
    end.ms = Date.now() - started;
    if (end.gone) end.resourceVersion = '';
    return end;
  }

  /** Applies one line of a watch to the cache; false when the watch must end (410 Gone). Throws a server's error event. */
  private onWatchEvent(line: string, end: WatchEnd, ns: string | undefined): boolean {
    if (line.trim() === '') return true;
    let event: { type?: string; object?: T & { code?: number; reason?: string; message?: string } };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      return true; // not an event (client-node's Watch skips these too)
    }
    const obj = event.object;
    if (!obj) return true;
    this.hear(ns);
    switch (event.type) {
      case 'ADDED':
      case 'MODIFIED':
        end.events++;
        this.upsert(obj);
        break;
      case 'DELETED':
        end.events++;
        this.remove(obj);
        break;
      case 'BOOKMARK':
        break;
      case 'ERROR':
        if (obj.code === 410) {
          end.gone = true;
          return false;
        }
        throw new KubeError(obj.code ?? 500, obj.reason ?? '', `watch error: ${obj.message ?? 'unknown'}`);
      default:
        return true;
    }
    const v = obj.metadata?.resourceVersion;
    if (v) end.resourceVersion = v;
    return true;
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
