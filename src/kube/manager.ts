/**
 * Runs controllers the way client-go's leader-elected binaries do: the
 * caches start at once on every replica (a standby keeps them warm, so it can
 * take over without a relist); the workers start only on the leader, once
 * every cache has synced, with every object enqueued and re-enqueued at each
 * resync. A replica that loses its lease exits (and starts clean), like
 * client-go's. SIGTERM or SIGINT drains the workers, releases the lease,
 * stops the caches and resolves.
 */
import type { Server } from 'node:http';
import type { Logger } from '../shared/log.ts';
import type { Controller } from './controller.ts';
import type { LeaderElector } from './leader.ts';

/** What the manager needs of an informer. */
export interface Cache {
  start(): void;
  stop(): Promise<void>;
  hasSynced(): boolean;
  waitForSync(): Promise<void>;
}

export interface ManagerOptions {
  caches: Cache[];
  controllers: Controller[];
  /** Enqueues every cached object into its controller. */
  enqueueAll: () => void;
  resyncMs: number;
  /** Absent: this replica leads from the start (no election). */
  elector?: LeaderElector;
  log: Logger;
  /** Told when this replica starts or stops leading (metrics). */
  onLeading?(leading: boolean): void;
  /** Closed last, after the caches stopped. */
  health?: Server;
}

/** Runs until a signal or a lost lease; sets `process.exitCode` (1 after a lost lease). */
export async function runManager(opts: ManagerOptions): Promise<void> {
  const { caches, controllers, elector, log } = opts;
  for (const c of caches) c.start();

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => { resolveStopped = r; });
  let shuttingDown = false;
  let leading = false;
  let resync: NodeJS.Timeout | undefined;
  let electionDone: Promise<void> = Promise.resolve();

  const startWorkers = async () => {
    await Promise.all(caches.map((c) => c.waitForSync()));
    if (shuttingDown) return;
    leading = true;
    opts.onLeading?.(true);
    log.info({ controllers: controllers.map((c) => c.name) }, 'caches synced; reconciling');
    opts.enqueueAll();
    resync = setInterval(opts.enqueueAll, opts.resyncMs);
    resync.unref();
    for (const c of controllers) c.start();
  };

  const shutdown = async (reason: string, code: number) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ reason, inFlight: controllers.reduce((n, c) => n + c.inFlight, 0) }, 'shutting down');
    if (resync) clearInterval(resync);
    await Promise.all(controllers.map((c) => c.shutDown()));
    elector?.stop();
    await electionDone;
    await Promise.all(caches.map((c) => c.stop()));
    await new Promise<void>((r) => (opts.health ? opts.health.close(() => r()) : r()));
    process.exitCode = code;
    resolveStopped();
  };

  if (elector) {
    electionDone = elector.run(
      () => { void startWorkers(); },
      () => {
        opts.onLeading?.(false);
        if (!shuttingDown && leading) {
          log.error('lost the leader lease; exiting');
          void shutdown('lost lease', 1);
        }
      },
    );
  } else {
    void startWorkers();
  }

  const onSignal = (sig: string) => { void shutdown(sig, 0); };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await stopped;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
}
