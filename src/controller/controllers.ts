/**
 * The five controllers of the operator, each with its own work queue of
 * `namespace/name` keys (one key, `signing-keys`, for the signing keys;
 * AudienceClaims by name, all in the operator's namespace), and the informer
 * handlers that feed them. Handlers only enqueue keys; the
 * controllers re-read the objects from the caches.
 *
 * - ApiKey: ownerReference, credentials Secret, status (apikey.ts).
 * - Deployment: its status, which counts its keys (deployment.ts). Counts
 *   are batched: a burst of new keys costs one status write, not one per key.
 * - FederatedCredential: ownerReference and status (federated-credential.ts).
 * - AudienceClaim: releases a claim whose holder no longer stands (api/claims.ts);
 *   the Deployment reconcile makes the claims.
 * - SigningKeys: the signing-keys Secret and its rotation (signing.ts).
 */
import { APIKEY_LABEL, type ApiKey, type AudienceClaim, type Deployment, type FederatedCredential, type SecretObject } from '../api/index.ts';
import { audienceClaimName, claimStands } from '../api/claims.ts';
import { isNotFound, paths, type KubeClient } from '../kube/client.ts';
import { Controller, type OutcomeObserver } from '../kube/controller.ts';
import type { EventRecorder } from '../kube/events.ts';
import { objectKey } from '../kube/informer.ts';
import { SupersededVersions } from '../kube/superseded.ts';
import type { Logger } from '../shared/log.ts';
import type { KeyGenerator, RotationPolicy } from '../shared/signing-keys.ts';
import { ApiKeyReconciler } from './apikey.ts';
import type { Caches } from './caches.ts';
import { reconcileDeployment } from './deployment.ts';
import { FederatedCredentialReconciler } from './federated-credential.ts';
import { Reason } from './reasons.ts';
import { SealKeys } from './seal.ts';
import { reconcileSigningKeys, SigningKeyMemory } from './signing.ts';
import { reconcileCaBundle, type ConfigMapObject } from './ca-bundle.ts';
import { CA_BUNDLE_CONFIGMAP, reconcileServingCert, type ServingCertPolicy } from './serving-cert.ts';
import { reconcileSessionKeys } from './session-keys.ts';
import type { SessionKeyPolicy } from '../shared/session-keys.ts';
import { apiKeyWrites, audienceClaimWrites, deploymentStatusWrite, federatedCredentialWrites, type WriteHooks } from './writes.ts';

/** How long a Deployment's key count waits for more of a burst. */
export const COUNT_BATCH_MS = 1000;
/**
 * How long it waits while the controller has a backlog of keys (more queued
 * than countDelayMs allows). The count (`status.apiKeys`) is informational, and
 * with keys spread over many Deployments a count written a second after each
 * new key is one more write per key, a fifth on top of the key's own four
 * (measured with 100,000 keys created over 1,000 Deployments faster than the
 * controller issues them: 2.5 count writes per key issued, the apiserver's
 * time taken from the keys). Under a backlog a Deployment's count is written
 * at most once a minute and at most a minute late, so a key's own writes
 * come first; without one, a second after the last change of a burst.
 */
export const COUNT_BUSY_MS = 60_000;
/**
 * How long a Deployment's key count waits, with `backlog` ApiKeys queued for
 * `workers` workers: a backlog is more than four keys per worker, and at
 * least 100 (a `kubectl apply` of a few dozen keys is not one).
 */
export const countDelayMs = (backlog: number, workers: number): number =>
  (backlog > Math.max(100, 4 * workers) ? COUNT_BUSY_MS : COUNT_BATCH_MS);
const SIGNING_KEYS_KEY = 'signing-keys';
const SERVING_CERT_KEY = 'serving-cert';
const SESSION_KEYS_KEY = 'console-session-keys';

export interface ControllerDeps {
  client: KubeClient;
  caches: Caches;
  recorder: EventRecorder;
  log: Logger;
  workers: number;
  tokenUrl: string;
  /** --expiry-warnings in ms (expiry.ts); default 30, 7 and 1 days. */
  expiryWarningsMs?: readonly number[];
  defaultAudiences: string[];
  /** --federation-issuers: a FederatedCredential of any other issuer is IssuerNotAllowed. */
  federationIssuers: ReadonlySet<string>;
  signingPolicy: RotationPolicy;
  /** The operator makes the token server's serving certificate and publishes its CA bundle (serving-cert.ts); off when undefined. */
  servingCert?: ServingCertPolicy;
  /** The in-cluster console's session keys Secret and sign-outs ConfigMap (session-keys.ts); off when undefined. */
  consoleSessions?: SessionKeyPolicy;
  /** Where new signing keys are made (the Secret, or a PKCS#11 token); default: the Secret. */
  keySource?: KeyGenerator;
  /** Runs before every write (production: refuse unless leading). */
  beforeWrite?: WriteHooks['beforeWrite'];
  observe?: OutcomeObserver;
}

export interface OperatorControllers {
  apiKeys: Controller;
  deployments: Controller;
  federatedCredentials: Controller;
  signingKeys: Controller;
  /** With a serving certificate policy: the certificate, and the CA bundle ConfigMap of each namespace. */
  servingCert: Controller | undefined;
  caBundles: Controller | undefined;
  /** With a console session policy: the console's session keys and sign-outs ConfigMap. */
  consoleSessions: Controller | undefined;
  audienceClaims: Controller;
  all: Controller[];
  /** Enqueues every object in the caches (on becoming leader, and at each resync). */
  enqueueAll: () => void;
  /** Why the signing-keys Secret is unusable, while it is (SigningKeyMemory). */
  signingKeysProblem: () => string | undefined;
}

const splitKey = (key: string) => key.split('/') as [string, string];

export function operatorControllers(deps: ControllerDeps): OperatorControllers {
  const { client, caches, recorder, log } = deps;
  const common = { log, observe: deps.observe };

  // ApiKey versions we wrote over are stale in the cache until our write's own event arrives.
  const superseded = new SupersededVersions();
  const reconciler = new ApiKeyReconciler({
    apiKey: (n, name) => caches.apiKeys.get(n, name),
    deployment: (n, name) => caches.deployments.get(n, name),
    apiKeysWithKeyId: (keyId) => caches.apiKeysWithKeyId(keyId),
    cachedSecret: (n, name) => caches.secrets.get(n, name),
    liveSecret: async (n, name) => {
      try {
        return await client.get<SecretObject>(paths.object('', 'v1', 'secrets', n, name));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
  }, apiKeyWrites(client, recorder, {
    beforeWrite: deps.beforeWrite,
    onApiKeyWritten: (before, after) => superseded.record(before, after),
  }), {
    tokenUrl: deps.tokenUrl, defaultAudiences: deps.defaultAudiences, expiryWarningsMs: deps.expiryWarningsMs,
    seals: new SealKeys({ client, namespace: caches.operatorNamespace, beforeWrite: deps.beforeWrite }),
  });

  const apiKeys = new Controller({ ...common, name: 'ApiKey', workers: deps.workers, processor: {
    process: async (key) => {
      const [namespace, name] = splitKey(key);
      if (superseded.isStale(caches.apiKeys.get(namespace, name))) return {};
      return reconciler.reconcile(namespace, name);
    },
  } });

  const applyDeploymentStatus = deploymentStatusWrite(client, { beforeWrite: deps.beforeWrite });
  const claimWrites = audienceClaimWrites(client, caches.operatorNamespace, { beforeWrite: deps.beforeWrite });
  // Released when its holder no longer stands; the claim's delete event wakes the Deployments waiting for it.
  const audienceClaims = new Controller({ ...common, name: 'AudienceClaim', workers: 1, processor: {
    process: async (name) => {
      const claim = caches.audienceClaims.get(caches.operatorNamespace, name);
      if (!claim?.spec?.holder) return {};
      const h = claim.spec.holder;
      if (!claimStands(claim, caches.deployments.get(h.namespace, h.name))) {
        await claimWrites.release(claim);
        log.info({ audience: claim.spec.audience, holder: `${h.namespace}/${h.name}` }, 'released an audience its holder no longer lists');
      }
      return {};
    },
  } });
  const deployments = new Controller({ ...common, name: 'Deployment', workers: deps.workers, processor: {
    process: async (key) => {
      const [namespace, name] = splitKey(key);
      await reconcileDeployment({
        deployment: (n, nm) => caches.deployments.get(n, nm),
        apiKeyCount: (n, nm) => caches.apiKeysOf(n, nm).filter((ak) => !ak.metadata.deletionTimestamp).length,
        deploymentsWithAudience: (aud) => caches.deploymentsWithAudience(aud),
        audienceClaim: (aud) => caches.audienceClaim(aud),
        claimAudience: (aud, dep) => claimWrites.claim(aud, dep),
        releaseLater: (claimName) => audienceClaims.enqueue(claimName),
        applyStatus: applyDeploymentStatus,
        event: (dep, type, reason, action, note) => recorder.emit(dep, type, reason, action, note),
        defaultAudiences: deps.defaultAudiences,
      }, namespace, name);
      return {};
    },
  } });

  const federatedReconciler = new FederatedCredentialReconciler({
    federatedCredential: (n, name) => caches.federatedCredentials.get(n, name),
    deployment: (n, name) => caches.deployments.get(n, name),
  }, federatedCredentialWrites(client, recorder, { beforeWrite: deps.beforeWrite }), { allowedIssuers: deps.federationIssuers });
  const federatedCredentials = new Controller({ ...common, name: 'FederatedCredential', workers: deps.workers, processor: {
    process: async (key) => {
      const [namespace, name] = splitKey(key);
      await federatedReconciler.reconcile(namespace, name);
      return {};
    },
  } });

  const signingMemory = new SigningKeyMemory();
  const signingKeys = new Controller({ ...common, name: 'SigningKeys', workers: 1, processor: {
    process: async () => ({
      requeueAfterMs: await reconcileSigningKeys({
        client, namespace: caches.operatorNamespace, policy: deps.signingPolicy, source: deps.keySource, log,
        beforeWrite: deps.beforeWrite,
        cached: () => caches.signingKeys(),
        memory: signingMemory,
        onRotated: (note, s) => recorder.emit(s, 'Normal', Reason.SigningKeysRotated, 'RotateSigningKeys', note),
        onInvalid: (note, s) => recorder.emit(s, 'Warning', Reason.SigningKeysInvalid, 'RotateSigningKeys', note),
      }),
    }),
  } });

  const { servingCert, caBundles, enqueueTls } = tlsControllers(deps, common);
  const sessionPolicy = deps.consoleSessions;
  const consoleSessions = sessionPolicy && new Controller({ ...common, name: 'ConsoleSessionKeys', workers: 1, processor: {
    process: async () => ({
      requeueAfterMs: await reconcileSessionKeys({ client, namespace: caches.operatorNamespace, policy: sessionPolicy, log, beforeWrite: deps.beforeWrite }),
    }),
  } });

  const enqueueApiKey = (ak: ApiKey) => apiKeys.enqueue(objectKey(ak));
  const countDelay = () => countDelayMs(apiKeys.queue.length, deps.workers);
  const countKeysOf = (ak: ApiKey) => deployments.enqueueAfter(`${ak.metadata.namespace}/${ak.spec.deploymentRef.name}`, countDelay());
  // The other claimants of a key id a key takes or lets go of (KeyIdConflict comes and goes with it).
  const otherClaimants = (keyId: string | undefined) => {
    if (keyId) for (const other of caches.apiKeysWithKeyId(keyId)) enqueueApiKey(other);
  };
  caches.apiKeys.on('add', (ak) => { superseded.observe(ak); enqueueApiKey(ak); countKeysOf(ak); otherClaimants(ak.status?.keyId); });
  caches.apiKeys.on('update', (ak, old) => {
    superseded.observe(ak);
    enqueueApiKey(ak);
    if (old?.status?.keyId !== ak.status?.keyId) { otherClaimants(old?.status?.keyId); otherClaimants(ak.status?.keyId); }
  });
  caches.apiKeys.on('delete', (ak) => { superseded.forget(ak); countKeysOf(ak); otherClaimants(ak.status?.keyId); });

  const enqueueFederated = (fc: FederatedCredential) => federatedCredentials.enqueue(objectKey(fc));
  // Its status changes only with its spec, its ownerReference or its Deployment; not with lastUsedAt.
  caches.federatedCredentials.on('add', enqueueFederated);
  caches.federatedCredentials.on('update', (fc, old) => {
    if (fc.metadata.generation !== old?.metadata.generation || fc.metadata.uid !== old?.metadata.uid
      || fc.metadata.ownerReferences?.length !== old?.metadata.ownerReferences?.length) enqueueFederated(fc);
  });

  // A Deployment's spec or identity matters to its keys and to the other
  // claimants of its audiences (AudienceConflict); its status only to itself.
  const onDeploymentChanged = (dep: Deployment, old?: Deployment) => {
    deployments.enqueue(objectKey(dep));
    // The claims of the audiences it listed: released if it let go of them or is gone.
    for (const aud of new Set([...dep.spec.audiences ?? [], ...old?.spec.audiences ?? []])) audienceClaims.enqueue(audienceClaimName(aud));
    for (const ak of caches.apiKeysOf(dep.metadata.namespace, dep.metadata.name!)) enqueueApiKey(ak);
    for (const fc of caches.federatedCredentialsOf(dep.metadata.namespace, dep.metadata.name!)) enqueueFederated(fc);
    for (const aud of new Set([...dep.spec.audiences ?? [], ...old?.spec.audiences ?? []])) {
      for (const other of caches.deploymentsWithAudience(aud)) deployments.enqueue(objectKey(other));
    }
  };
  caches.deployments.on('add', (dep) => onDeploymentChanged(dep));
  caches.deployments.on('update', (dep, old) => {
    if (dep.metadata.generation !== old?.metadata.generation || dep.metadata.uid !== old?.metadata.uid
      || !dep.metadata.deletionTimestamp !== !old?.metadata.deletionTimestamp) onDeploymentChanged(dep, old);
    // Its status alone changed (its own count write, mostly): checked as a count is, so that under a
    // backlog a count written while keys kept coming does not start another write at once.
    else deployments.enqueueAfter(objectKey(dep), countDelay());
  });
  caches.deployments.on('delete', (dep) => onDeploymentChanged(dep));

  // A credentials Secret changed or deleted by hand: its controlling ApiKey repairs it. One restored
  // from a backup (no ownerReference) wakes the ApiKey its label names, which may be waiting for it.
  const onSecret = (s: SecretObject) => {
    const owner = s.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'ApiKey')?.name ?? s.metadata?.labels?.[APIKEY_LABEL];
    if (owner) apiKeys.enqueue(`${s.metadata?.namespace}/${owner}`);
  };
  caches.secrets.on('add', onSecret);
  caches.secrets.on('update', onSecret);
  caches.secrets.on('delete', onSecret);
  // A claim made or released: every Deployment listing its audience (the holder goes Ready, the others
  // AudienceConflict; after a release, the next holder claims it). A new claim is checked at once too.
  const onClaim = (c: AudienceClaim) => {
    if (c.metadata.name) audienceClaims.enqueue(c.metadata.name);
    if (typeof c.spec?.audience !== 'string') return;
    for (const d of caches.deploymentsWithAudience(c.spec.audience)) deployments.enqueue(objectKey(d));
  };
  caches.audienceClaims.on('add', onClaim);
  caches.audienceClaims.on('update', onClaim);
  caches.audienceClaims.on('delete', onClaim);
  caches.signingSecret.on('add', (s) => signingMemory.observe(s));
  caches.signingSecret.on('update', (s) => { signingMemory.observe(s); signingKeys.enqueue(SIGNING_KEYS_KEY); });
  caches.signingSecret.on('delete', () => signingKeys.enqueue(SIGNING_KEYS_KEY));

  return {
    apiKeys, deployments, federatedCredentials, signingKeys, servingCert, caBundles, consoleSessions, audienceClaims,
    signingKeysProblem: () => signingMemory.problem,
    all: [apiKeys, deployments, federatedCredentials, signingKeys, audienceClaims, ...(servingCert && caBundles ? [servingCert, caBundles] : []),
      ...consoleSessions ? [consoleSessions] : []],
    enqueueAll: () => {
      signingKeys.enqueue(SIGNING_KEYS_KEY);
      enqueueTls();
      consoleSessions?.enqueue(SESSION_KEYS_KEY);
      for (const c of caches.audienceClaims.list()) if (c.metadata.name) audienceClaims.enqueue(c.metadata.name);
      for (const d of caches.deployments.list()) deployments.enqueue(objectKey(d));
      for (const ak of caches.apiKeys.list()) enqueueApiKey(ak);
      for (const fc of caches.federatedCredentials.list()) enqueueFederated(fc);
    },
  };
}

/**
 * The serving certificate (one key) and the CA bundle ConfigMaps (a key per
 * namespace): a changed bundle, a ConfigMap changed or deleted by hand and a
 * new namespace each put the namespaces concerned on the queue.
 */
function tlsControllers(deps: ControllerDeps, common: { log: Logger; observe?: OutcomeObserver }) {
  const { client, caches, log } = deps;
  const policy = deps.servingCert;
  if (!policy || !caches.caBundles) return { servingCert: undefined, caBundles: undefined, enqueueTls: () => undefined };
  let bundle: string | undefined;
  const caBundles = new Controller({ ...common, name: 'CABundle', workers: 1, processor: {
    process: async (namespace) => {
      const requeueAfterMs = await reconcileCaBundle({
        client, bundle: () => bundle, beforeWrite: deps.beforeWrite,
        cached: (ns) => caches.caBundles!.get(ns, CA_BUNDLE_CONFIGMAP),
        namespaceActive: (ns) => caches.namespaceActive(ns),
      }, namespace);
      return requeueAfterMs === undefined ? {} : { requeueAfterMs };
    },
  } });
  const enqueueBundles = () => { for (const ns of caches.bundleNamespaces()) caBundles.enqueue(ns); };
  const servingCert = new Controller({ ...common, name: 'ServingCertificate', workers: 1, processor: {
    process: async () => ({
      requeueAfterMs: await reconcileServingCert({
        client, namespace: caches.operatorNamespace, policy, log, beforeWrite: deps.beforeWrite,
        onBundle: (b) => {
          if (b === bundle) return;
          bundle = b;
          enqueueBundles();
        },
      }),
    }),
  } });
  const onConfigMap = (cm: ConfigMapObject) => { if (cm.metadata?.namespace) caBundles.enqueue(cm.metadata.namespace); };
  caches.caBundles.on('update', onConfigMap);
  caches.caBundles.on('delete', onConfigMap);
  caches.namespaces?.on('add', (ns) => caBundles.enqueue(ns.metadata!.name!));
  return {
    servingCert, caBundles,
    enqueueTls: () => {
      servingCert.enqueue(SERVING_CERT_KEY);
      enqueueBundles();
    },
  };
}
