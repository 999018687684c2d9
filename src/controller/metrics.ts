/**
 * The controller's Prometheus metrics, served on the health port. Labels are
 * bounded (kind, result, method, code, resource, state): never a key's name
 * or id. The ApiKey gauges (key-states.ts) are labelled by namespace and
 * Deployment, so their series grow with Deployments, not with keys; they are
 * computed from the caches at scrape time, on every replica (an alert takes
 * the max over replicas).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { KubeClient } from '../kube/client.ts';
import type { Controller, OutcomeObserver } from '../kube/controller.ts';
import { instrumentKubeRequests } from '../kube/request-metrics.ts';
import type { Caches } from './caches.ts';
import { KEY_STATES, keysByDeployment } from './key-states.ts';

export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly reconciles: Counter<'kind' | 'result'>;
  private readonly duration: Histogram<'kind'>;
  private readonly leader: Gauge;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'apikey_operator_controller_' });
    this.reconciles = new Counter({ name: 'apikey_operator_reconcile_total', help: 'Reconciles by kind and result', labelNames: ['kind', 'result'], registers });
    this.duration = new Histogram({
      name: 'apikey_operator_reconcile_duration_seconds', help: 'Reconcile latency', labelNames: ['kind'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    });
    this.leader = new Gauge({ name: 'apikey_operator_leader', help: '1 while this replica leads', registers });
  }

  /** For Controller's `observe` option. */
  readonly observeReconcile: OutcomeObserver = (kind, result, seconds) => {
    this.reconciles.inc({ kind, result });
    this.duration.observe({ kind }, seconds);
  };

  setLeading(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
  }

  /** Counts every request the client makes, by method and status code (0: unreachable). */
  instrument(client: KubeClient): void {
    instrumentKubeRequests(client, this.registry);
  }

  /** Gauges read at scrape time: queue depth and cache sizes. */
  watch(controllers: Controller[], caches: Caches, signingKeysProblem: () => string | undefined = () => undefined): void {
    new Gauge({
      name: 'apikey_operator_signing_keys_invalid',
      help: '1 while the signing-keys Secret is malformed or deleted (the good keys are kept, and restored when the controller has them)',
      registers: [this.registry],
      collect() { this.set(signingKeysProblem() ? 1 : 0); },
    });
    new Gauge({
      name: 'apikey_operator_workqueue_depth', help: 'Keys waiting', registers: [this.registry],
      collect() { this.set(controllers.reduce((n, c) => n + c.queue.length, 0)); },
    });
    new Gauge({
      name: 'apikey_operator_cached_objects', help: 'Objects in the informer caches', labelNames: ['resource'], registers: [this.registry],
      collect() {
        this.set({ resource: 'apikeys' }, caches.apiKeys.size);
        this.set({ resource: 'deployments' }, caches.deployments.size);
        this.set({ resource: 'federatedcredentials' }, caches.federatedCredentials.size);
        this.set({ resource: 'secrets' }, caches.secrets.size);
        this.set({ resource: 'audienceclaims' }, caches.audienceClaims.size);
      },
    });
    // One pass over the cached keys serves both gauges of a scrape.
    let last = { atMs: -Infinity, keys: [] as ReturnType<typeof keysByDeployment> };
    const byDeploymentNow = () => {
      const now = Date.now();
      if (now - last.atMs > 1000) last = { atMs: now, keys: keysByDeployment(caches.apiKeys.list(), now) };
      return last.keys;
    };
    new Gauge({
      name: 'apikey_operator_apikeys', help: 'ApiKeys by namespace, Deployment and state (ready, expiring, expired, conflict, not_ready)',
      labelNames: ['namespace', 'deployment', 'state'], registers: [this.registry],
      collect() {
        this.reset();
        for (const d of byDeploymentNow()) {
          for (const state of KEY_STATES) this.set({ namespace: d.namespace, deployment: d.deployment, state }, d.counts[state]);
        }
      },
    });
    new Gauge({
      name: 'apikey_operator_apikey_soonest_expiry_timestamp_seconds',
      help: 'The earliest spec.expiresAt among the ApiKeys of a Deployment that have not expired yet, in Unix seconds',
      labelNames: ['namespace', 'deployment'], registers: [this.registry],
      collect() {
        this.reset();
        for (const d of byDeploymentNow()) {
          if (d.soonestExpiryMs !== undefined) this.set({ namespace: d.namespace, deployment: d.deployment }, d.soonestExpiryMs / 1000);
        }
      },
    });
  }
}
