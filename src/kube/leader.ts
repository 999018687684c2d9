/**
 * Leader election on a coordination.k8s.io Lease, after client-go's rules:
 * a 15 s lease renewed every 2 s, given up when a renewal has not succeeded
 * for 10 s; expiry judged by when *we* last saw the record change (immune to
 * clock skew); updates carry the resourceVersion we read, so a 409 is a lost
 * race; leading starts only after our write succeeded. `isLeader()` also
 * checks the renew deadline so that an event-loop stall cannot let a stale
 * leader write.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isAlreadyExists, isConflict, isNotFound, paths, type KubeClient } from './client.ts';
import { microTime } from './types.ts';
import type { Logger } from '../shared/log.ts';

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
}

/**
 * A write refused because this replica does not lead (or its last renewal is
 * older than the renew deadline). Not a Kubernetes error: nothing was sent.
 */
export class NotLeaderError extends Error {
  readonly code = 'NotLeader';
  constructor() {
    super('not the leader; refusing to write');
    this.name = 'NotLeaderError';
  }
}

export function leaderIdentity(): string {
  return `${process.env.POD_NAME ?? hostname()}_${randomBytes(4).toString('hex')}`;
}

export class LeaderElector {
  readonly identity: string;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private leading = false;
  private lastRenewOk = 0;
  private observed: { rv?: string; at: number; holder?: string } = { at: 0 };
  private lease: Lease | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;

  private readonly client: KubeClient;
  private readonly opts: LeaderOptions;

  constructor(client: KubeClient, opts: LeaderOptions) {
    this.client = client;
    this.opts = opts;
    this.identity = opts.identity ?? leaderIdentity();
    this.leaseMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryMs = opts.retryPeriodMs ?? 2_000;
  }

  private get collection(): string {
    return paths.collection('coordination.k8s.io', 'v1', 'leases', this.opts.namespace);
  }

  private get path(): string {
    return paths.object('coordination.k8s.io', 'v1', 'leases', this.opts.namespace, this.opts.name);
  }

  isLeader(): boolean {
    return this.leading && Date.now() - this.lastRenewOk < this.renewDeadlineMs;
  }

  /** Throws NotLeaderError unless this replica leads now; called before every write. */
  assertLeading(): void {
    if (!this.isLeader()) throw new NotLeaderError();
  }

  /**
   * Campaigns until elected, then calls `onStarted` and renews until the
   * lease is lost or `stop()` is called; resolves after `onStopped`.
   */
  async run(onStarted: () => void, onStopped: () => void): Promise<void> {
    const log = this.opts.log.child({ lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.identity });
    while (!this.stopped && !(await this.tryAcquireOrRenew(log))) await this.sleep(this.retryMs);
    if (this.stopped) return;
    this.leading = true;
    log.info('became leader');
    onStarted();
    while (!this.stopped) {
      await this.sleep(this.retryMs);
      if (this.stopped) break;
      const ok = await this.tryAcquireOrRenew(log);
      if (!ok && Date.now() - this.lastRenewOk >= this.renewDeadlineMs) {
        log.error('failed to renew the lease before the deadline; stopping leading');
        break;
      }
    }
    const wasLeading = this.leading;
    this.leading = false;
    if (this.stopped && wasLeading) await this.release(log);
    onStopped();
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wake = undefined; resolve(); }, ms);
      this.wake = () => { clearTimeout(t); this.wake = undefined; resolve(); };
    });
  }

  private async tryAcquireOrRenew(log: Logger): Promise<boolean> {
    const now = new Date();
    try {
      let lease: Lease;
      try {
        lease = await this.client.get<Lease>(this.path);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        const created = await this.client.create<Lease>(this.collection, {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
          metadata: { name: this.opts.name, namespace: this.opts.namespace },
          spec: {
            holderIdentity: this.identity, leaseDurationSeconds: Math.round(this.leaseMs / 1000),
            acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0,
          },
        });
        this.accept(created);
        return true;
      }
      if (lease.metadata.resourceVersion !== this.observed.rv) {
        this.observed = { rv: lease.metadata.resourceVersion, at: Date.now(), holder: lease.spec.holderIdentity };
      }
      const holder = lease.spec.holderIdentity ?? '';
      const held = holder !== '' && holder !== this.identity;
      const durationMs = (lease.spec.leaseDurationSeconds ?? this.leaseMs / 1000) * 1000;
      if (held && Date.now() - this.observed.at < durationMs) return false;
      const mine = holder === this.identity;
      const updated = await this.client.replace<Lease>(this.path, {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: this.identity,
          leaseDurationSeconds: Math.round(this.leaseMs / 1000),
          renewTime: microTime(now),
          acquireTime: mine ? lease.spec.acquireTime : microTime(now),
          leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
        },
      });
      if (!mine) log.info({ previous: holder || undefined }, 'acquired the lease');
      this.accept(updated);
      return true;
    } catch (err) {
      if (!isConflict(err) && !isAlreadyExists(err)) log.warn({ err }, 'lease acquire/renew failed');
      return false;
    }
  }

  private accept(lease: Lease): void {
    this.lease = lease;
    this.lastRenewOk = Date.now();
    this.observed = { rv: lease.metadata.resourceVersion, at: Date.now(), holder: this.identity };
  }

  /** On a clean shutdown, give the lease up so that another replica takes over at once. */
  private async release(log: Logger): Promise<void> {
    if (!this.lease) return;
    try {
      await this.client.replace(this.path, {
        ...this.lease,
        spec: { ...this.lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() },
      });
      log.info('released the lease');
    } catch (err) {
      log.warn({ err }, 'could not release the lease');
    }
  }
}
