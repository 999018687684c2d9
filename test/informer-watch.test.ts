/**
 * The informer's watches against the real apiserver, seen through a proxy
 * that counts watch requests: a server that ends every watch at once gets a
 * bounded number of requests (backoff before every restart), a watch that
 * keeps receiving events outlives its idle window (an idle timeout, not a
 * total deadline), a silent watch is cut after its idle window, and a quiet
 * watch lives until the server itself ends it. The timings are shortened
 * through the informer's options so that each case takes seconds.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, paths } from '../src/kube/client.ts';
import { Informer, type WatchTiming } from '../src/kube/informer.ts';
import type { KubeObject } from '../src/kube/types.ts';
import { createLogger } from '../src/shared/log.ts';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { adminClient } from './support/resources.ts';
import { waitFor } from './support/wait.ts';
import { WatchProxy } from './support/watch-proxy.ts';

let ns: TestNamespace;
let proxy: WatchProxy;
let informer: Informer<KubeObject> | undefined;

beforeAll(async () => {
  ns = await createNamespace('informer-watch');
  proxy = new WatchProxy();
  await proxy.start();
});
afterEach(async () => {
  await informer?.stop();
  informer = undefined;
  proxy.mode = 'pass';
});
afterAll(async () => {
  await proxy.stop();
  await ns.cleanup();
});

const collection = () => paths.collection('', 'v1', 'configmaps', ns.name);

async function startInformer(timing: Partial<WatchTiming>): Promise<{ informer: Informer<KubeObject>; since: number }> {
  const since = Date.now();
  informer = new Informer<KubeObject>(new KubeClient(proxy.kubeConfig()), {
    apiPrefix: '/api/v1', plural: 'configmaps', namespaces: [ns.name], log: createLogger({ level: 'silent' }), watch: timing,
  });
  informer.start();
  await informer.waitForSync();
  return { informer, since };
}

async function createConfigMap(name: string): Promise<void> {
  await adminClient().create(collection(), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { n: name } });
}

describe('the informer against a server that ends every watch at once', () => {
  it('restarts with growing backoff: a bounded number of watch requests, not a tight loop', async () => {
    proxy.mode = 'end-at-once';
    const { informer: inf, since } = await startInformer({ backoffBaseMs: 500, backoffMaxMs: 30_000 });
    await sleep(8_000);
    const count = proxy.watchesOf(collection(), since).length;
    // 250-500ms, 0.5-1s, 1-2s, 2-4s, 4-8s: at most 5 restarts fit in 8s after the first watch.
    expect(count).toBeGreaterThanOrEqual(3);
    expect(count).toBeLessThanOrEqual(6);
    expect(inf.lastError).toMatch(/ended after \d+ms with no event/);
  });

  it('picks up events again once the server lets watches run', async () => {
    proxy.mode = 'end-at-once';
    const { since } = await startInformer({ backoffBaseMs: 200, backoffMaxMs: 1_600 });
    await sleep(3_000);
    proxy.mode = 'pass';
    await createConfigMap('after-recovery');
    await waitFor('the informer to see the ConfigMap', () => Promise.resolve(informer!.get(ns.name, 'after-recovery') !== undefined), 10_000);
    expect(proxy.watchesOf(collection(), since).length).toBeLessThanOrEqual(8);
  });
});

describe('the idle timeout of a watch', () => {
  it('is not a total deadline: a watch that keeps receiving events outlives its idle window', async () => {
    const { since } = await startInformer({ timeoutSeconds: [60, 60], idleMs: 1_500 });
    for (let i = 0; i < 10; i++) {
      await createConfigMap(`busy-${i}`);
      await sleep(400);
    }
    // 10 events over ~4s, each within 1.5s of the one before: still the first watch.
    const watches = proxy.watchesOf(collection(), since);
    expect(watches).toHaveLength(1);
    expect(watches[0]!.endedAt).toBeUndefined();
    expect(informer!.list(ns.name).filter((c) => c.metadata?.name?.startsWith('busy-'))).toHaveLength(10);
  });

  it('cuts a watch that goes silent: the proxy answers and then sends nothing', async () => {
    proxy.mode = 'stall';
    const { informer: inf, since } = await startInformer({ timeoutSeconds: [60, 60], idleMs: 1_500, backoffBaseMs: 200 });
    await waitFor('the silent watch to be cut', () => Promise.resolve(proxy.watchesOf(collection(), since)[0]?.endedAt !== undefined), 10_000);
    const first = proxy.watchesOf(collection(), since)[0]!;
    expect(first.endedAt! - first.startedAt).toBeGreaterThanOrEqual(1_400);
    expect(first.endedAt! - first.startedAt).toBeLessThan(4_000);
    await waitFor('a new watch after the cut', () => Promise.resolve(proxy.watchesOf(collection(), since).length >= 2), 10_000);
    expect(inf.lastError).toMatch(/received nothing for \ds/);
  });

  it('by default outlasts the watch the server was asked for, so a quiet watch ends when the server ends it', async () => {
    const { since } = await startInformer({ timeoutSeconds: [4, 4], healthyMs: 3_000 });
    await sleep(3_500);
    const quiet = proxy.watchesOf(collection(), since);
    expect(quiet).toHaveLength(1);
    expect(quiet[0]!.endedAt).toBeUndefined();
    await waitFor('the server to end the watch and the informer to start the next', () =>
      Promise.resolve(proxy.watchesOf(collection(), since).length >= 2), 10_000);
    const first = proxy.watchesOf(collection(), since)[0]!;
    expect(first.endedAt! - first.startedAt).toBeGreaterThanOrEqual(3_900);
    expect(informer!.lastError).toBeUndefined();
  });
});
