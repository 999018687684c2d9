/**
 * Sessions signed out before their expiry, shared by every console replica:
 * a session lives in its cookie (sealed-sessions.ts), so a copy of the cookie
 * would go on working after sign-out unless every replica knows that its
 * session id is over. The list is one ConfigMap in the operator namespace
 * (shared/session-keys.ts SIGN_OUTS_CONFIGMAP; the controller makes it, the
 * console's RBAC allows reading, watching and patching that one object and
 * nothing else), watched by every replica:
 *
 * - `s.<session id>`: `<issued at>:<expires at>` (ms since the epoch), one
 *   per signed-out session until it would have expired anyway. Session ids
 *   are random and name nothing; a signed-out id is worthless.
 * - `not-before`: every session issued before this time is over.
 *
 * Bounded: at most MAX_SIGN_OUTS entries (about 60 bytes each, far below a
 * ConfigMap's 1 MiB). A sign-out prunes expired entries; when the list is
 * still full, the oldest eighth by issue time goes and `not-before` rises
 * past them, which also ends the sessions issued before it that were never
 * signed out (those people sign in again): the bound never un-revokes a
 * session. Raising `not-before` carries the resourceVersion read, so two
 * replicas evicting at once cannot lower it; adding an entry is a merge patch
 * of one key, which needs none.
 *
 * Until the list has been read once, no session is accepted (`synced`); after
 * that, a replica that loses its watch goes on with what it last saw, and
 * catches up when the watch resumes (the informer's backoff and relist).
 */
import { isConflict, paths, type KubeClient, CONTENT } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import type { KubeObject } from '../kube/types.ts';
import type { Logger } from '../shared/log.ts';

/** Entries past which the oldest eighth is evicted behind `not-before`. */
export const MAX_SIGN_OUTS = 8192;
export const NOT_BEFORE_KEY = 'not-before';
const ENTRY = /^s\.([A-Za-z0-9_-]{16,64})$/;
const VALUE = /^(\d{1,16}):(\d{1,16})$/;

interface ConfigMapObject extends KubeObject { data?: Record<string, string> }

/** What a sign-out list knows: the revoked ids (with their times) and the watermark. */
export interface SignOutView {
  entries: Map<string, { iat: number; exp: number }>;
  notBefore: number;
}

export function readSignOuts(cm: ConfigMapObject | undefined): SignOutView {
  const entries = new Map<string, { iat: number; exp: number }>();
  let notBefore = 0;
  for (const [k, v] of Object.entries(cm?.data ?? {})) {
    if (k === NOT_BEFORE_KEY) {
      if (/^\d{1,16}$/.test(v)) notBefore = Number(v);
      continue;
    }
    const id = ENTRY.exec(k)?.[1];
    const t = VALUE.exec(v);
    if (id && t) entries.set(id, { iat: Number(t[1]), exp: Number(t[2]) });
  }
  return { entries, notBefore };
}

/**
 * The merge patch that records one sign-out: the entry, null for every
 * expired entry, and when the list is full, the eviction behind a higher
 * `not-before` (then `evicts` is true and the patch must carry the
 * resourceVersion it was computed from).
 */
export function signOutPatch(view: SignOutView, id: string, iat: number, exp: number, now: number, max = MAX_SIGN_OUTS): { data: Record<string, string | null>; evicts: boolean } {
  const data: Record<string, string | null> = {};
  const live = [...view.entries].filter(([k, e]) => {
    if (e.exp > now && k !== id) return true;
    if (k !== id) data[`s.${k}`] = null;
    return false;
  });
  data[`s.${id}`] = `${iat}:${exp}`;
  if (live.length + 1 <= max) return { data, evicts: false };
  live.sort((a, b) => a[1].iat - b[1].iat);
  const evicted = live.slice(0, Math.max(live.length + 1 - max, Math.ceil(max / 8)));
  for (const [k] of evicted) data[`s.${k}`] = null;
  // Evicted entries are sorted by iat: past the last of them, every evicted session is before not-before.
  data[NOT_BEFORE_KEY] = String(Math.max(view.notBefore, evicted.at(-1)![1].iat + 1));
  return { data, evicts: true };
}

export class SignOuts {
  private view: SignOutView = { entries: new Map(), notBefore: 0 };
  private resourceVersion: string | undefined;
  private readonly informer: Informer<ConfigMapObject>;
  private readonly client: KubeClient;
  private readonly path: string;
  private readonly name: string;
  private readonly now: () => number;

  constructor(o: { client: KubeClient; namespace: string; name: string; log: Logger; now?: () => number }) {
    this.client = o.client;
    this.name = o.name;
    this.now = o.now ?? Date.now;
    this.path = paths.object('', 'v1', 'configmaps', o.namespace, o.name);
    this.informer = new Informer<ConfigMapObject>(o.client, {
      apiPrefix: '/api/v1', plural: 'configmaps', namespaces: [o.namespace], fieldSelector: `metadata.name=${o.name}`, log: o.log,
    });
    const seen = (cm: ConfigMapObject) => this.observe(cm);
    this.informer.on('add', seen);
    this.informer.on('update', seen);
    this.informer.on('delete', () => { this.resourceVersion = undefined; });
  }

  start(): void { this.informer.start(); }
  stop(): Promise<void> { return this.informer.stop(); }

  /** Whether the list has been read at least once: until then no session is accepted. */
  get synced(): boolean { return this.informer.hasSynced(); }

  /** Whether the session of this id, issued at `iat`, was signed out (or is before `not-before`). */
  isSignedOut(id: string, iat: number): boolean {
    return iat < this.view.notBefore || this.view.entries.has(id);
  }

  /** Records a sign-out; throws when the API server did not take it (the session then goes on). */
  async record(id: string, iat: number, exp: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const { data, evicts } = signOutPatch(this.view, id, iat, exp, this.now());
      try {
        const cm = await this.client.request<ConfigMapObject>('PATCH', this.path, {
          contentType: CONTENT.mergePatch,
          body: { metadata: evicts ? { resourceVersion: this.resourceVersion } : {}, data },
        });
        this.observe(cm);
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= 4) throw err;
        this.observe(await this.client.get<ConfigMapObject>(this.path));
      }
    }
  }

  get size(): number { return this.view.entries.size; }

  private observe(cm: ConfigMapObject): void {
    if (cm.metadata?.name !== this.name) return;
    const rv = cm.metadata.resourceVersion;
    // A watch event older than what a patch answered is no news.
    if (rv && this.resourceVersion && Number(rv) < Number(this.resourceVersion)) return;
    this.resourceVersion = rv;
    this.view = readSignOuts(cm);
  }
}
