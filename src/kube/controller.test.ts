import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../shared/log.ts';
import { KubeError } from './client.ts';
import { Controller, type Outcome, type ProcessResult } from './controller.ts';
import { NotLeaderError } from './leader.ts';

const log = createLogger({ level: 'silent', name: 'test' });

/** A controller whose processor answers from a script, recording every visit and outcome. */
function scripted(answers: Record<string, (visit: number) => ProcessResult | Error>, conflictRetryMs = 30) {
  const visits: string[] = [];
  const outcomes: [string, Outcome][] = [];
  const count = new Map<string, number>();
  const c = new Controller({
    name: 'Test', log, workers: 1, conflictRetryMs,
    queue: { baseDelayMs: 20, maxDelayMs: 1000 },
    observe: (name, outcome) => outcomes.push([name, outcome]),
    processor: {
      process: (key) => {
        const n = (count.get(key) ?? 0) + 1;
        count.set(key, n);
        visits.push(key);
        const a = answers[key]!(n);
        return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
      },
    },
  });
  return { c, visits, outcomes };
}

describe('the worker loop', () => {
  it('forgets a key that succeeded and does not visit it again', async () => {
    const { c, visits, outcomes } = scripted({ a: () => ({}) });
    c.enqueue('a');
    expect(await c.processNextItem()).toBe(true);
    expect(c.queue.failureCount('a')).toBe(0);
    await sleep(60);
    expect(c.queue.length).toBe(0);
    expect(visits).toEqual(['a']);
    expect(outcomes).toEqual([['Test', 'ok']]);
  });

  it('visits a key again after the requeueAfterMs its reconcile asked for', async () => {
    const { c } = scripted({ a: () => ({ requeueAfterMs: 40 }) });
    c.enqueue('a');
    await c.processNextItem();
    expect(c.queue.length).toBe(0);
    await sleep(80);
    expect(c.queue.length).toBe(1);
  });

  it('re-adds a failed key rate-limited, its backoff growing with each failure, and resets it on success', async () => {
    const { c, outcomes } = scripted({ a: (n) => (n < 3 ? new KubeError(500, 'InternalError', 'boom') : {}) });
    c.enqueue('a');
    await c.processNextItem();
    expect(c.queue.failureCount('a')).toBe(1);
    expect(c.queue.length).toBe(0); // not at once: after its backoff
    await c.processNextItem(); // waits for the backoff (20 ms)
    expect(c.queue.failureCount('a')).toBe(2);
    await c.processNextItem(); // 40 ms later, succeeds
    expect(c.queue.failureCount('a')).toBe(0);
    expect(outcomes.map(([, o]) => o)).toEqual(['error', 'error', 'ok']);
  });

  it.each([
    ['a 409 Conflict', new KubeError(409, 'Conflict', 'the object has been modified')],
  ])('treats %s as a stale cache: retried after conflictRetryMs without growing the backoff', async (_name, err) => {
    const { c, outcomes } = scripted({ a: (n) => (n === 1 ? err : {}) }, 30);
    c.enqueue('a');
    await c.processNextItem();
    expect(c.queue.failureCount('a')).toBe(0);
    expect(outcomes).toEqual([['Test', 'conflict']]);
    const started = Date.now();
    await c.processNextItem();
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(outcomes.at(-1)).toEqual(['Test', 'ok']);
  });

  it.each([
    ['an unreachable apiserver', new KubeError(0, 'Unreachable', 'cannot reach')],
    ['a refused write of a replica that does not lead', new NotLeaderError()],
    ['a 422 that is not a stale version', new KubeError(422, 'Invalid', 'spec.x: Invalid value')],
    ['a create of an object that exists (409 AlreadyExists)', new KubeError(409, 'AlreadyExists', 'secrets "x" already exists')],
    ['a plain exception', new Error('bug')],
  ])('treats %s as a failure to retry with backoff', async (_name, err) => {
    const { c, outcomes } = scripted({ a: () => err });
    c.enqueue('a');
    await c.processNextItem();
    expect(outcomes).toEqual([['Test', 'error']]);
    expect(c.queue.failureCount('a')).toBe(1);
  });

  it('never hands one key to two workers at once, and visits it again if it changed meanwhile', async () => {
    let running = 0;
    let maxRunning = 0;
    let visits = 0;
    const c = new Controller({
      name: 'Test', log, workers: 4,
      processor: {
        process: async () => {
          visits++;
          maxRunning = Math.max(maxRunning, ++running);
          await sleep(20);
          running--;
          return {};
        },
      },
    });
    c.start();
    c.enqueue('a');
    await sleep(5);
    c.enqueue('a'); // while processing: dirty, re-queued when done
    c.enqueue('a'); // deduplicated
    await sleep(80);
    await c.shutDown();
    expect(maxRunning).toBe(1);
    expect(visits).toBe(2);
  });

  it('drains what is queued on shutDown, then its workers end', async () => {
    const seen: string[] = [];
    const c = new Controller({
      name: 'Test', log, workers: 2,
      processor: { process: (key) => { seen.push(key); return Promise.resolve({}); } },
    });
    for (const k of ['a', 'b', 'c']) c.enqueue(k);
    c.start();
    await c.shutDown();
    expect(seen.sort()).toEqual(['a', 'b', 'c']);
    expect(await c.processNextItem()).toBe(false);
    expect(c.inFlight).toBe(0);
  });
});
