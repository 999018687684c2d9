/**
 * The worker loop every controller shares, after cert-manager's
 * `pkg/controller/controller.go` and client-go's `processNextWorkItem`: a
 * controller owns one work queue of its own keys and implements only
 * `process(key)`; this module gets a key, processes it, and decides from the
 * outcome what happens to the key next.
 *
 * | outcome of `process(key)`          | the key                                   |
 * | ---------------------------------- | ----------------------------------------- |
 * | `{}`                               | forgotten (its failure count reset)       |
 * | `{ requeueAfterMs }`               | forgotten, and visited again after that   |
 * | a conflict (stale cache, 409)      | visited again after `conflictRetryMs`     |
 * | any other error                    | re-added rate-limited (per-key backoff)   |
 *
 * A conflict means the decision was taken on a cached object that the
 * apiserver already replaced: the newer version's watch event enqueues the
 * key again at once, so the delayed visit is only a safety net and the key's
 * backoff is not grown. One queue per controller means a key is always of
 * the kind its controller expects: no kind can fall into another's branch.
 */
import type { Logger } from '../shared/log.ts';
import { isConflict } from './client.ts';
import { WorkQueue, type QueueOptions } from './queue.ts';

export interface ProcessResult {
  /** Visit the key again after this many ms (rotation, expiry, end of a grace period). */
  requeueAfterMs?: number;
}

/** What a controller implements: one reconcile of one key, level-based and idempotent. */
export interface ItemProcessor {
  process(key: string): Promise<ProcessResult>;
}

export type Outcome = 'ok' | 'conflict' | 'error';

/** Called once per processed key, for metrics. */
export type OutcomeObserver = (controller: string, outcome: Outcome, seconds: number) => void;

export interface ControllerOptions {
  /** Names the controller in logs and metrics (`ApiKey`, `Deployment`, ...). */
  name: string;
  processor: ItemProcessor;
  log: Logger;
  workers: number;
  observe?: OutcomeObserver;
  conflictRetryMs?: number;
  queue?: QueueOptions;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly processor: ItemProcessor;
  private readonly log: Logger;
  private readonly workers: number;
  private readonly observe: OutcomeObserver | undefined;
  private readonly conflictRetryMs: number;
  private running: Promise<void>[] = [];
  private busy = 0;

  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.processor = opts.processor;
    this.log = opts.log;
    this.workers = opts.workers;
    this.observe = opts.observe;
    this.conflictRetryMs = opts.conflictRetryMs ?? 2000;
    this.queue = new WorkQueue(opts.queue);
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  enqueueAfter(key: string, ms: number): void {
    this.queue.addAfter(key, ms);
  }

  /** Keys being processed right now. */
  get inFlight(): number {
    return this.busy;
  }

  /** Starts the workers; they run until `shutDown()`. */
  start(): void {
    this.running = Array.from({ length: this.workers }, () => this.work());
  }

  /** Stops taking new keys, lets the workers finish what is queued, and resolves when they have. */
  async shutDown(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.running);
  }

  private async work(): Promise<void> {
    while (await this.processNextItem());
  }

  /** Processes one key; false once the queue is shut down and drained. */
  async processNextItem(): Promise<boolean> {
    const key = await this.queue.get();
    if (key === undefined) return false;
    const started = performance.now();
    this.busy++;
    let outcome: Outcome = 'ok';
    try {
      const result = await this.processor.process(key);
      this.queue.forget(key);
      if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      if (isConflict(err)) {
        outcome = 'conflict';
        this.log.debug({ controller: this.name, key }, 'conflict; retrying with fresh state');
        this.queue.addAfter(key, this.conflictRetryMs);
      } else {
        outcome = 'error';
        this.log.warn({ controller: this.name, key, err, retries: this.queue.failureCount(key) },
          'reconcile failed; retrying with backoff');
        this.queue.addRateLimited(key);
      }
    } finally {
      this.busy--;
      this.queue.done(key);
      this.observe?.(this.name, outcome, (performance.now() - started) / 1000);
    }
    return true;
  }
}
