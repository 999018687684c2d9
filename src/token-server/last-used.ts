/**
 * status.lastUsedAt of ApiKeys and FederatedCredentials, off the request
 * path: a successful request only notes the key (or credential) in a Map (O(1), no I/O); a background timer writes the notes with
 * one merge patch per key to the apikeys/status subresource, at most once a
 * minute per key (also across replicas, as far as the cached status shows).
 * The patch carries the ApiKey's uid, so a key deleted and re-created under
 * the same name is never stamped. Failures are only logged.
 */
import { APIKEYS, FEDERATED_CREDENTIALS, FIELD_MANAGER, GROUP, VERSION } from '../api/index.ts';
import { CONTENT, type KubeClient, KubeError, paths } from '../kube/client.ts';
import { metaTime } from '../kube/types.ts';
import type { Logger } from '../shared/log.ts';

/** What issued a token: an ApiKey (with its key id) or a FederatedCredential. */
export interface UsedCredential {
  namespace: string;
  name: string;
  uid: string;
  lastUsedAtMs: number;
  keyId?: string;
}

/**
 * The contract's one field manager. This is a merge patch, so the apiserver
 * records it as an Update of `apikey-operator` on the status subresource,
 * apart from the controller's Apply: the controller's applied status never
 * lists lastUsedAt and so never removes it. (Applying lastUsedAt alone under
 * the same manager would instead drop every other status field it applied.)
 */
export const LAST_USED_FIELD_MANAGER = FIELD_MANAGER;
const MIN_INTERVAL_MS = 60_000;

interface Pending {
  plural: string;
  namespace: string;
  name: string;
  uid: string;
  keyId: string | undefined;
  usedAtMs: number;
}

export interface LastUsedOptions {
  client: KubeClient | undefined;
  log: Logger;
  flushEveryMs?: number;
  onWrite?: (ok: boolean) => void;
}

export class LastUsedRecorder {
  private readonly pending = new Map<string, Pending>();
  /** uid -> when we last queued a write for it. */
  private readonly queuedAt = new Map<string, number>();
  private readonly opts: LastUsedOptions;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(opts: LastUsedOptions) {
    this.opts = opts;
  }

  /** Called on every successful request: notes the use; never blocks, never throws. */
  touch(key: UsedCredential, nowMs: number, plural: typeof APIKEYS | typeof FEDERATED_CREDENTIALS = APIKEYS): void {
    if (nowMs - key.lastUsedAtMs < MIN_INTERVAL_MS) return;
    const last = this.queuedAt.get(key.uid);
    if (last !== undefined && nowMs - last < MIN_INTERVAL_MS) return;
    this.queuedAt.set(key.uid, nowMs);
    this.pending.set(key.uid, { plural, namespace: key.namespace, name: key.name, uid: key.uid, keyId: key.keyId, usedAtMs: nowMs });
  }

  start(): void {
    if (!this.opts.client || this.timer) return;
    this.timer = setInterval(() => { void this.flush(); }, this.opts.flushEveryMs ?? 5000);
    this.timer.unref();
  }

  /** Stops the timer and makes one last attempt to write what is pending. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flushing;
    await this.flush();
  }

  flush(): Promise<void> {
    if (this.flushing || !this.opts.client || this.pending.size === 0) return this.flushing ?? Promise.resolve();
    const batch = [...this.pending.values()];
    this.pending.clear();
    this.flushing = this.write(batch).finally(() => { this.flushing = undefined; });
    return this.flushing;
  }

  private async write(batch: Pending[]): Promise<void> {
    const client = this.opts.client!;
    const now = Date.now();
    for (const [uid, at] of this.queuedAt) if (now - at >= MIN_INTERVAL_MS) this.queuedAt.delete(uid);
    // A few at a time: this is background bookkeeping, not worth a burst at the apiserver.
    for (let i = 0; i < batch.length; i += 4) {
      await Promise.all(batch.slice(i, i + 4).map(async (p) => {
        const path = `${paths.object(GROUP, VERSION, p.plural, p.namespace, p.name)}/status`;
        try {
          await client.request('PATCH', path, {
            body: { metadata: { uid: p.uid }, status: { lastUsedAt: metaTime(new Date(p.usedAtMs)) } },
            contentType: CONTENT.mergePatch,
            query: { fieldManager: LAST_USED_FIELD_MANAGER },
            signal: AbortSignal.timeout(10_000),
          });
          this.opts.onWrite?.(true);
        } catch (err) {
          this.opts.onWrite?.(false);
          const status = err instanceof KubeError ? err.status : 0;
          // 404: the key was deleted since; nothing to record.
          const what = p.plural === APIKEYS ? { apiKey: `${p.namespace}/${p.name}`, keyId: p.keyId } : { federatedCredential: `${p.namespace}/${p.name}` };
          this.opts.log[status === 404 ? 'debug' : 'warn']({ ...what, status, err },
            'could not record status.lastUsedAt');
        }
      }));
    }
  }
}
