/**
 * Whether the apiserver still accepts this program's credential. A cache is
 * only as fresh as its list-watch: when the apiserver answers 401 (the
 * ServiceAccount token expired, was revoked, or its ServiceAccount or bound
 * object was deleted) or 403 (its RBAC was removed), relists fail and the
 * informers keep serving what they had, deleted keys included. That is a
 * fault, not a partition: an unreachable apiserver (network errors, timeouts)
 * is left to the bounded-staleness rules and changes nothing here.
 *
 * Two kinds of reports feed it, each under its own source name:
 * - the informers' lists and watches, as they restart;
 * - a probe: a watch stays open on the credential it started with, for up to
 *   five minutes, so every `intervalMs` one cheap authenticated request
 *   (a list of at most one object the program may read) asks again.
 * The credential is refused while any source's last answer was 401 or 403;
 * a success of that source clears it. Other answers (404, 5xx, 429) and
 * network errors leave the source's state as it was.
 */
import type { Logger } from '../shared/log.ts';
import { KubeError, type KubeClient } from './client.ts';

/** How often the probe asks, by default. */
export const DEFAULT_PROBE_INTERVAL_MS = 10_000;

export interface Refusal {
  /** 401 or 403. */
  status: number;
  /** Which list, watch or probe was refused, e.g. `apikeys/*` or `probe`. */
  source: string;
  /** Since when (wall clock) the credential is refused. */
  sinceMs: number;
}

export interface CredentialHealthOptions {
  log: Logger;
  /** The probe: an authenticated request the program's RBAC allows; none: informers only. */
  probe?: { client: KubeClient; path: string; intervalMs?: number };
}

/** True for the answers that say the credential itself is refused. */
export function isCredentialRefusal(err: unknown): err is KubeError {
  return err instanceof KubeError && (err.status === 401 || err.status === 403);
}

export class CredentialHealth {
  private readonly refusals = new Map<string, Refusal>();
  private readonly log: Logger;
  private readonly probe: CredentialHealthOptions['probe'];
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(opts: CredentialHealthOptions) {
    this.log = opts.log;
    this.probe = opts.probe;
  }

  /** Records how a request of `source` ended: `undefined` for a success, else its error. */
  report(source: string, err?: unknown): void {
    const before = this.refused();
    if (err === undefined) this.refusals.delete(source);
    else if (isCredentialRefusal(err)) {
      if (!this.refusals.has(source)) this.refusals.set(source, { status: err.status, source, sinceMs: Date.now() });
    } else return;
    const after = this.refused();
    if (!before && after) {
      this.log.error({ status: after.status, source: after.source },
        'the Kubernetes API refuses this program\'s credential: its caches are no longer refreshed, so it is not ready and refuses token requests until the credential works again');
    } else if (before && !after) {
      this.log.info({ refusedForMs: Date.now() - before.sinceMs }, 'the Kubernetes API accepts this program\'s credential again');
    }
  }

  /** The oldest refusal still standing; undefined while the credential works. */
  refused(): Refusal | undefined {
    let oldest: Refusal | undefined;
    for (const r of this.refusals.values()) if (!oldest || r.sinceMs < oldest.sinceMs) oldest = r;
    return oldest;
  }

  start(): void {
    const probe = this.probe;
    if (!probe || this.timer) return;
    this.timer = setInterval(() => { this.inFlight ??= this.ask().finally(() => { this.inFlight = undefined; }); }, probe.intervalMs ?? DEFAULT_PROBE_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  private async ask(): Promise<void> {
    const probe = this.probe!;
    try {
      await probe.client.get(probe.path, { limit: 1 });
      this.report('probe');
    } catch (err) {
      this.report('probe', err);
    }
  }
}
