/**
 * The controller program: informers fill caches, events put keys on a work
 * queue, workers reconcile. Only the leader (a Lease) runs workers; a
 * standby keeps warm caches so it can take over at once. SIGTERM drains the
 * workers, releases the lease and exits.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ApiKey, Deployment } from '../api/index.ts';
import { API_VERSION, APIKEYS, DEPLOYMENTS, FIELD_MANAGER, GROUP, LEASE_NAME, SIGNING_KEYS_SECRET, VERSION } from '../api/index.ts';
import { isConflict, isNotFound, KubeClient, KubeError, paths } from '../kube/client.ts';
import { EventRecorder } from '../kube/events.ts';
import { Informer, objectKey } from '../kube/informer.ts';
import { LeaderElector, leaderIdentity } from '../kube/leader.ts';
import { WorkQueue } from '../kube/queue.ts';
import { createLogger } from '../shared/log.ts';
import { DEFAULT_ROTATION, type SigningAlgorithm } from '../shared/signing-keys.ts';
import { ApiKeyReconciler, type ApiKeyReads, type ApiKeyWrites } from './apikey.ts';
import { reconcileDeployment } from './deployment.ts';
import { startHealthServer } from './health.ts';
import { Reason } from './reasons.ts';
import { MANAGED_BY, MANAGED_BY_LABEL, type SecretObject } from './secret.ts';
import { reconcileSigningKeys } from './signing.ts';

export interface ControllerOptions {
  kc: KubeConfig;
  operatorNamespace: string;
  namespaces: string[];
  audiences: string[];
  workers: number;
  tokenUrl: string;
  signingAlgorithm: SigningAlgorithm;
  signingKeyRotationMs: number;
  signingKeyPublishLeadMs: number;
  healthPort: number;
  leaderElect: boolean;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  resyncMs: number;
  logLevel: string;
}

const SIGNING_KEY = 'SigningKeys';
const REPORTER = 'apikeys.dev/apikey-operator';

export async function runController(opts: ControllerOptions): Promise<void> {
  const log = createLogger({ level: opts.logLevel, name: 'controller' });
  const client = new KubeClient(opts.kc);
  const identity = leaderIdentity();
  const recorder = new EventRecorder(client, REPORTER, identity, log);
  const ns = opts.namespaces.length ? opts.namespaces : undefined;
  const crdPrefix = `/apis/${API_VERSION}`;

  const apiKeys = new Informer<ApiKey>(client, { apiPrefix: crdPrefix, plural: APIKEYS, namespaces: ns, log });
  const deployments = new Informer<Deployment>(client, { apiPrefix: crdPrefix, plural: DEPLOYMENTS, namespaces: ns, log });
  const secrets = new Informer<SecretObject>(client, {
    apiPrefix: '/api/v1', plural: 'secrets', namespaces: ns, labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY},apikeys.dev/apikey`, log,
  });
  const signingSecret = new Informer<SecretObject>(client, {
    apiPrefix: '/api/v1', plural: 'secrets', namespaces: [opts.operatorNamespace],
    fieldSelector: `metadata.name=${SIGNING_KEYS_SECRET}`, log,
  });
  const informers = [apiKeys, deployments, secrets, signingSecret];
  apiKeys.addIndex('deployment', (ak) => [`${ak.metadata.namespace}/${ak.spec.deploymentRef.name}`]);

  // Metrics: bounded labels only.
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'apikey_operator_controller_' });
  const reconciles = new Counter({ name: 'apikey_operator_reconcile_total', help: 'Reconciles by kind and result', labelNames: ['kind', 'result'], registers: [registry] });
  const duration = new Histogram({ name: 'apikey_operator_reconcile_duration_seconds', help: 'Reconcile latency', labelNames: ['kind'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] });
  const leaderGauge = new Gauge({ name: 'apikey_operator_leader', help: '1 while this replica leads', registers: [registry] });
  const requests = new Counter({ name: 'apikey_operator_kube_requests_total', help: 'Requests to the Kubernetes API by method and status code', labelNames: ['method', 'code'], registers: [registry] });
  client.observer = (method, code) => requests.inc({ method, code: String(code) });
  const queue = new WorkQueue();
  new Gauge({ name: 'apikey_operator_workqueue_depth', help: 'Keys waiting', registers: [registry], collect() { this.set(queue.length); } });
  new Gauge({ name: 'apikey_operator_cached_objects', help: 'Objects in the informer caches', labelNames: ['resource'], registers: [registry], collect() {
    this.set({ resource: 'apikeys' }, apiKeys.size);
    this.set({ resource: 'deployments' }, deployments.size);
    this.set({ resource: 'secrets' }, secrets.size);
  } });

  // ApiKey versions we have written over. A cached object with one of these
  // resourceVersions is known to be stale (our own write's watch event is on
  // its way and will enqueue the key again), so reconciling it would only
  // end in a 409.
  const superseded = new Map<string, { stale: Set<string>; latest: string }>();
  const supersede = (before: ApiKey, after: ApiKey) => {
    const key = objectKey(before);
    const entry = superseded.get(key) ?? { stale: new Set<string>(), latest: '' };
    entry.stale.add(before.metadata.resourceVersion!);
    entry.latest = after.metadata.resourceVersion!;
    superseded.set(key, entry);
  };
  const observeApiKey = (ak: ApiKey) => {
    const entry = superseded.get(objectKey(ak));
    if (entry?.latest === ak.metadata.resourceVersion) superseded.delete(objectKey(ak));
  };
  const isStale = (ak: ApiKey | undefined) => !!ak && !!superseded.get(objectKey(ak))?.stale.has(ak.metadata.resourceVersion!);

  // Event handlers only enqueue keys. Deployment counts are batched: a burst
  // of new keys costs one status write, not one per key.
  const enqueueApiKey = (ak: ApiKey) => queue.add(`ApiKey/${objectKey(ak)}`);
  const enqueueDeployment = (namespace: string | undefined, name: string) => queue.add(`Deployment/${namespace}/${name}`);
  const countDeployment = (ak: ApiKey) => queue.addAfter(`Deployment/${ak.metadata.namespace}/${ak.spec.deploymentRef.name}`, 1000);
  apiKeys.on('add', (ak) => { observeApiKey(ak); enqueueApiKey(ak); countDeployment(ak); });
  apiKeys.on('update', (ak) => { observeApiKey(ak); enqueueApiKey(ak); });
  apiKeys.on('delete', (ak) => { superseded.delete(objectKey(ak)); countDeployment(ak); });
  const onDeployment = (dep: Deployment) => {
    enqueueDeployment(dep.metadata.namespace, dep.metadata.name!);
    for (const ak of apiKeys.byIndex('deployment', objectKey(dep))) enqueueApiKey(ak);
  };
  deployments.on('add', onDeployment);
  deployments.on('update', (dep, old) => { if (dep.metadata.generation !== old?.metadata.generation || dep.metadata.uid !== old?.metadata.uid) onDeployment(dep); else enqueueDeployment(dep.metadata.namespace, dep.metadata.name!); });
  deployments.on('delete', onDeployment);
  const onSecret = (s: SecretObject) => {
    const owner = s.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'ApiKey');
    if (owner) queue.add(`ApiKey/${s.metadata?.namespace}/${owner.name}`);
  };
  secrets.on('update', onSecret);
  secrets.on('delete', onSecret);
  signingSecret.on('update', () => queue.add(SIGNING_KEY));
  signingSecret.on('delete', () => queue.add(SIGNING_KEY));

  // Reads and writes of the ApiKey reconcile.
  const reads: ApiKeyReads = {
    apiKey: (n, name) => apiKeys.get(n, name),
    deployment: (n, name) => deployments.get(n, name),
    cachedSecret: (n, name) => secrets.get(n, name),
    liveSecret: async (n, name) => {
      try {
        return await client.get<SecretObject>(paths.object('', 'v1', 'secrets', n, name));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
  };
  let elector: LeaderElector | undefined;
  const assertLeading = () => {
    if (elector && !elector.isLeader()) throw new KubeError(0, 'NotLeader', 'not the leader; refusing to write');
  };
  const objectPath = (plural: string, o: ApiKey | Deployment) => paths.object(GROUP, VERSION, plural, o.metadata.namespace!, o.metadata.name!);
  /** Server-side apply of the status subresource, based on the resourceVersion the decision was made on. */
  const applyStatus = <T extends ApiKey | Deployment>(plural: string, kind: T['kind'], o: T, status: T['status']) => {
    assertLeading();
    return client.apply<T>(`${objectPath(plural, o)}/status`, {
      apiVersion: API_VERSION, kind,
      metadata: { name: o.metadata.name, namespace: o.metadata.namespace, resourceVersion: o.metadata.resourceVersion },
      status,
    }, FIELD_MANAGER);
  };
  const writes: ApiKeyWrites = {
    async setOwner(ak, dep) {
      assertLeading();
      const refs = [...(ak.metadata.ownerReferences ?? []), { apiVersion: API_VERSION, kind: 'Deployment', name: dep.metadata.name!, uid: dep.metadata.uid! }];
      const updated = await client.mergePatch<ApiKey>(objectPath(APIKEYS, ak),
        { metadata: { resourceVersion: ak.metadata.resourceVersion, ownerReferences: refs } });
      supersede(ak, updated);
      return updated;
    },
    async applyStatus(ak, status) {
      const updated = await applyStatus(APIKEYS, 'ApiKey', ak, status);
      supersede(ak, updated);
      return updated;
    },
    async applySecret(secret) {
      assertLeading();
      return client.apply<SecretObject>(paths.object('', 'v1', 'secrets', secret.metadata!.namespace!, secret.metadata!.name!), secret, FIELD_MANAGER);
    },
    event(ak, type, reason, action, note) {
      recorder.emit(ak, type, reason, action, note);
    },
  };
  const reconciler = new ApiKeyReconciler(reads, writes, { tokenUrl: opts.tokenUrl, defaultAudiences: opts.audiences });
  const policy = {
    ...DEFAULT_ROTATION, algorithm: opts.signingAlgorithm, rotateEveryMs: opts.signingKeyRotationMs, publishLeadMs: opts.signingKeyPublishLeadMs,
  };

  async function sync(key: string): Promise<number | undefined> {
    if (key === SIGNING_KEY) {
      return reconcileSigningKeys({
        client, namespace: opts.operatorNamespace, policy, log,
        cached: () => signingSecret.get(opts.operatorNamespace, SIGNING_KEYS_SECRET),
        onRotated: (note, s) => recorder.emit(s, 'Normal', Reason.SigningKeysRotated, 'RotateSigningKeys', note),
        onInvalid: (note, s) => recorder.emit(s, 'Warning', Reason.SigningKeysInvalid, 'RotateSigningKeys', note),
      });
    }
    const [kind, namespace, name] = key.split('/') as [string, string, string];
    if (kind === 'ApiKey') {
      if (isStale(apiKeys.get(namespace, name))) return undefined;
      return (await reconciler.reconcile(namespace, name)).requeueAfterMs;
    }
    await reconcileDeployment({
      deployment: (n, nm) => deployments.get(n, nm),
      apiKeyCount: (n, nm) => apiKeys.byIndex('deployment', `${n}/${nm}`).filter((ak) => !ak.metadata.deletionTimestamp).length,
      applyStatus: (dep, status) => applyStatus(DEPLOYMENTS, 'Deployment', dep, status),
      defaultAudiences: opts.audiences,
    }, namespace, name);
    return undefined;
  }

  let inFlight = 0;
  async function worker(): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const kind = key.split('/')[0]!;
      const end = duration.startTimer({ kind });
      inFlight++;
      try {
        const after = await sync(key);
        queue.forget(key);
        if (after !== undefined) queue.addAfter(key, after);
        reconciles.inc({ kind, result: 'ok' });
      } catch (err) {
        const conflict = isConflict(err) || (err instanceof KubeError && err.status === 422 && /the object has been modified/.test(err.message));
        reconciles.inc({ kind, result: conflict ? 'conflict' : 'error' });
        if (conflict) {
          // Decided on a stale cache: the newer version's watch event enqueues
          // the key again; the delayed visit is only a safety net.
          log.debug({ key }, 'conflict; retrying with fresh state');
          queue.addAfter(key, 2000);
        } else {
          log.warn({ key, err, retries: queue.failureCount(key) }, 'reconcile failed; retrying with backoff');
          queue.addRateLimited(key);
        }
      } finally {
        inFlight--;
        end();
        queue.done(key);
      }
    }
  }

  for (const inf of informers) inf.start();
  let leading = !opts.leaderElect;
  const health = opts.healthPort > 0 ? await startHealthServer(opts.healthPort, {
    registry,
    live: () => true,
    ready: () => informers.every((i) => i.hasSynced()),
  }) : undefined;

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => { resolveStopped = r; });
  let shuttingDown = false;
  let workers: Promise<void>[] = [];
  let resync: NodeJS.Timeout | undefined;

  const startWorkers = async () => {
    await Promise.all(informers.map((i) => i.waitForSync()));
    if (shuttingDown) return;
    leading = true;
    leaderGauge.set(1);
    log.info({ workers: opts.workers, apiKeys: apiKeys.size, deployments: deployments.size }, 'caches synced; reconciling');
    const enqueueAll = () => {
      queue.add(SIGNING_KEY);
      for (const d of deployments.list()) enqueueDeployment(d.metadata.namespace, d.metadata.name!);
      for (const ak of apiKeys.list()) enqueueApiKey(ak);
    };
    enqueueAll();
    resync = setInterval(enqueueAll, opts.resyncMs);
    resync.unref();
    workers = Array.from({ length: opts.workers }, () => worker());
  };

  const shutdown = async (reason: string, code: number) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ reason, inFlight }, 'shutting down');
    if (resync) clearInterval(resync);
    queue.shutDown();
    await Promise.all(workers);
    elector?.stop();
    await electionDone;
    await Promise.all(informers.map((i) => i.stop()));
    await new Promise<void>((r) => (health ? health.close(() => r()) : r()));
    process.exitCode = code;
    resolveStopped();
  };

  let electionDone: Promise<void> = Promise.resolve();
  if (opts.leaderElect) {
    elector = new LeaderElector(client, {
      namespace: opts.operatorNamespace, name: LEASE_NAME, identity, log,
      leaseDurationMs: opts.leaseDurationMs, renewDeadlineMs: opts.renewDeadlineMs, retryPeriodMs: opts.retryPeriodMs,
    });
    electionDone = elector.run(
      () => { void startWorkers(); },
      () => {
        leaderGauge.set(0);
        if (!shuttingDown && leading) {
          // Like client-go: a replica that lost its lease exits and starts clean.
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
