/**
 * Bounded staleness (--max-cache-staleness): the longest the token server
 * goes on answering from caches that have heard nothing from the apiserver.
 * Each cache (one informer: ApiKeys, Deployments, ...) records when it last
 * heard from the apiserver: a successful list, the answer to a watch request,
 * or any watch event, bookmarks included (kube/informer.ts). Under the bound
 * the watches are asked to end after a quarter to a third of it
 * (informer.ts timingForStaleness), so a healthy idle cluster is heard from
 * at least three times per bound.
 *
 * Past the bound, for the stalest cache, the endpoints that judge keys and
 * tokens (token, introspection, /authz) answer 503 temporarily_unavailable
 * with Retry-After, /readyz is 503, and one error line is logged; once every
 * cache has heard again, it serves again by itself and logs it. The JWKS and
 * discovery stay served: verifiers need them for the tokens already issued.
 *
 * Off (no bound) by default: through an apiserver outage the token server
 * keeps serving what it knew, which is availability; with a bound, a key
 * deleted during a partition stops working within the bound, which is
 * revocation. The choice is the cluster admin's (docs/operations/high-availability.md).
 *
 * The ages are exported whatever the setting, for monitoring.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../shared/log.ts';

/** --max-cache-staleness's smallest value: a third of it still covers a watch round trip on a loaded apiserver. */
export const MIN_MAX_STALENESS_MS = 15_000;

/** Retry-After of a refusal for staleness, in seconds: about one watch restart under the smallest bound. */
export const STALE_RETRY_AFTER_SECONDS = 5;

/** How often the guard looks, to log a trip and a recovery without a request. */
const CHECK_EVERY_MS = 1000;

export interface StaleCache {
  /** The cache, e.g. `apikeys`. */
  cache: string;
  /** Milliseconds since it last heard from the apiserver. */
  ageMs: number;
}

export interface StalenessGuardOptions {
  /** The bound in milliseconds; undefined: off, never stale. */
  boundMs: number | undefined;
  /** When (performance.now(), monotonic ms) each cache last heard from the apiserver; 0: not yet. */
  lastHeard(): Record<string, number>;
  log: Logger;
  /** The monotonic clock of lastHeard (performance.now()); tests move it. */
  now?: () => number;
}

export class StalenessGuard {
  readonly boundMs: number | undefined;
  private readonly opts: StalenessGuardOptions;
  private readonly now: () => number;
  /** Caches that have not heard yet count from here (the program's start). */
  private readonly startedMs: number;
  private timer: NodeJS.Timeout | undefined;
  private trippedSinceMs: number | undefined;

  constructor(opts: StalenessGuardOptions) {
    this.opts = opts;
    this.boundMs = opts.boundMs;
    this.now = opts.now ?? (() => performance.now());
    this.startedMs = this.now();
  }

  /** Milliseconds since each cache last heard from the apiserver; `nowMs` on the monotonic clock. */
  ages(nowMs = this.now()): StaleCache[] {
    return Object.entries(this.opts.lastHeard()).map(([cache, at]) => ({ cache, ageMs: Math.max(0, nowMs - (at || this.startedMs)) }));
  }

  /**
   * The stalest cache past the bound; undefined while every cache is within
   * it, or when the bound is off. A change of state is logged on the spot:
   * one error line on a trip, one info line on the recovery.
   */
  stale(nowMs = this.now()): StaleCache | undefined {
    if (this.boundMs === undefined) return undefined;
    let worst: StaleCache | undefined;
    for (const a of this.ages(nowMs)) if (a.ageMs > this.boundMs && (!worst || a.ageMs > worst.ageMs)) worst = a;
    this.note(worst, nowMs);
    return worst;
  }

  /** Starts logging trips and recoveries as they happen (a no-op when off). */
  start(): void {
    if (this.boundMs === undefined || this.timer) return;
    this.timer = setInterval(() => this.check(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Looks now, so that a trip and a recovery are logged without a request. */
  check(nowMs = this.now()): void {
    this.stale(nowMs);
  }

  private note(stale: StaleCache | undefined, nowMs: number): void {
    if (stale && this.trippedSinceMs === undefined) {
      this.trippedSinceMs = nowMs;
      this.opts.log.error({ cache: stale.cache, secondsSinceHeard: Math.round(stale.ageMs / 1000), maxCacheStalenessSeconds: this.boundMs! / 1000 },
        'a cache has heard nothing from the Kubernetes API for longer than --max-cache-staleness: not ready, and token requests, '
        + 'introspection and /authz answer 503 temporarily_unavailable until it hears again');
    } else if (!stale && this.trippedSinceMs !== undefined) {
      this.opts.log.info({ refusedForMs: nowMs - this.trippedSinceMs }, 'every cache has heard from the Kubernetes API again: serving');
      this.trippedSinceMs = undefined;
    }
  }
}
