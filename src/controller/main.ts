/**
 * The controller program, as wiring only: flags -> client -> caches ->
 * controllers -> health -> election. Informers fill the caches (caches.ts),
 * their events put keys on each controller's work queue (controllers.ts),
 * workers reconcile (kube/controller.ts); only the leader of a Lease runs
 * workers, and only it may write (kube/manager.ts).
 */
import type { KubeConfigLike } from '../kube/credentials.ts';
import { LEASE_NAME } from '../api/index.ts';
import { KubeClient } from '../kube/client.ts';
import { EventRecorder } from '../kube/events.ts';
import { LeaderElector, leaderIdentity } from '../kube/leader.ts';
import { runManager } from '../kube/manager.ts';
import { createLogger } from '../shared/log.ts';
import { DEFAULT_ROTATION, type SigningAlgorithm } from '../shared/signing-keys.ts';
import { Pkcs11KeySource } from '../shared/pkcs11/source.ts';
import { Pkcs11Token, type Pkcs11Config } from '../shared/pkcs11/token.ts';
import { SecretKeySource } from '../shared/signing-source.ts';
import { Caches } from './caches.ts';
import { operatorControllers } from './controllers.ts';
import { startHealthServer } from './health.ts';
import { ControllerMetrics } from './metrics.ts';
import { clusterCaPem, TokenServerIdentity } from './token-server-identity.ts';
import type { ServingCertPolicy } from './serving-cert.ts';
import type { SessionKeyPolicy } from '../shared/session-keys.ts';

export interface ControllerOptions {
  kc: KubeConfigLike;
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
  /** --expiry-warnings, in ms (expiry.ts). */
  expiryWarningsMs?: number[];
  logLevel: string;
  /** --federation-issuers: the external issuers FederatedCredentials may trust. */
  federationIssuers?: string[];
  /** Sidecar mode: write the token server's own ServiceAccount token into `dir` (token-server-identity.ts). */
  tokenServerIdentity?: { serviceAccount: string; dir: string };
  /** Make the token server's serving certificate and publish its CA bundle (serving-cert.ts, ca-bundle.ts). */
  servingCert?: ServingCertPolicy;
  /** Make and rotate the in-cluster console's session keys (session-keys.ts). */
  consoleSessions?: SessionKeyPolicy;
  /** Generate the signing keys in this PKCS#11 token instead of the Secret. */
  pkcs11?: Pkcs11Config;
}

/** Events name this controller as their reporter. */
const REPORTER = 'apikeys.dev/apikey-operator';

export async function runController(opts: ControllerOptions): Promise<void> {
  const log = createLogger({ level: opts.logLevel, name: 'controller' });
  const client = new KubeClient(opts.kc);
  const metrics = new ControllerMetrics();
  metrics.instrument(client);
  const identity = leaderIdentity();
  const elector = opts.leaderElect ? new LeaderElector(client, {
    namespace: opts.operatorNamespace, name: LEASE_NAME, identity, log,
    leaseDurationMs: opts.leaseDurationMs, renewDeadlineMs: opts.renewDeadlineMs, retryPeriodMs: opts.retryPeriodMs,
  }) : undefined;

  // The PKCS#11 token, when configured: connected at start, re-connected on its own after a failure.
  const token = opts.pkcs11 && new Pkcs11Token({ ...opts.pkcs11, readWrite: true, log, registry: metrics.registry });
  token?.start();
  const keySource = token ? new Pkcs11KeySource(token) : new SecretKeySource();

  const caches = new Caches(client, { namespaces: opts.namespaces, operatorNamespace: opts.operatorNamespace, log, servingCert: !!opts.servingCert });
  const controllers = operatorControllers({
    client, caches, log,
    recorder: new EventRecorder(client, REPORTER, identity, log),
    workers: opts.workers,
    tokenUrl: opts.tokenUrl,
    expiryWarningsMs: opts.expiryWarningsMs,
    defaultAudiences: opts.audiences,
    federationIssuers: new Set(opts.federationIssuers ?? []),
    servingCert: opts.servingCert,
    consoleSessions: opts.consoleSessions,
    signingPolicy: {
      ...DEFAULT_ROTATION, algorithm: opts.signingAlgorithm,
      rotateEveryMs: opts.signingKeyRotationMs, publishLeadMs: opts.signingKeyPublishLeadMs,
    },
    keySource,
    beforeWrite: elector && (() => elector.assertLeading()),
    observe: metrics.observeReconcile,
  });
  metrics.watch(controllers.all, caches, controllers.signingKeysProblem);

  const health = opts.healthPort > 0 ? await startHealthServer(opts.healthPort, {
    registry: metrics.registry,
    live: () => true,
    ready: () => caches.all.every((c) => c.hasSynced()),
  }) : undefined;

  // Every replica, leader or not: each has its own token-server sidecar.
  const identityWriter = opts.tokenServerIdentity && new TokenServerIdentity(client, {
    ...opts.tokenServerIdentity, namespace: opts.operatorNamespace, log,
    caPem: clusterCaPem(opts.kc.getCurrentCluster()),
  });
  identityWriter?.start();

  await runManager({
    caches: caches.all, controllers: controllers.all, enqueueAll: controllers.enqueueAll, resyncMs: opts.resyncMs,
    elector, log, health, onLeading: (leading) => metrics.setLeading(leading),
  });
  identityWriter?.stop();
  token?.stop();
}
