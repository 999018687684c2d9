import { describe, expect, it } from 'vitest';
import { WorkQueue } from './queue.ts';

describe('WorkQueue', () => {
  it('queues a key once however often it is added', async () => {
    const q = new WorkQueue();
    q.add('a'); q.add('a'); q.add('b'); q.add('a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands a key being processed to a second worker, and re-queues it when done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const k = await q.get();
    q.add('a');
    expect(q.length).toBe(0);
    q.done(k!);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('a');
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add('x');
    expect(await next).toBe('x');
  });

  it('backs a failing key off exponentially and forgets it after success', async () => {
    const q = new WorkQueue({ baseDelayMs: 20 });
    q.addRateLimited('a');
    q.addRateLimited('a');
    expect(q.failureCount('a')).toBe(2);
    const t0 = Date.now();
    expect(await q.get()).toBe('a');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
    q.forget('a');
    expect(q.failureCount('a')).toBe(0);
  });

  it('keeps the earlier of two scheduled visits', async () => {
    const q = new WorkQueue();
    q.addAfter('a', 5_000);
    q.addAfter('a', 10);
    const t0 = Date.now();
    expect(await q.get()).toBe('a');
    expect(Date.now() - t0).toBeLessThan(1_000);
    q.shutDown();
  });

  it('releases waiting workers on shutdown', async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.shutDown();
    expect(await next).toBeUndefined();
  });
});
