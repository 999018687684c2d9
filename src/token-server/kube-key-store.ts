/**
 * The KeyStore of a running token server: watches on ApiKeys (indexed by
 * status.keyId), Deployments, FederatedCredentials (indexed by their
 * Deployment), the AudienceClaims and the one signing-keys Secret in the
 * operator's namespace, read with a field selector on its name (the only
 * Secret this program can read: RBAC gives it that resourceName and no
 * other). Each watch event recomputes the affected entries, so a refusal
 * (key deleted or not Ready, Deployment gone) applies from the next request.
 * When the apiserver refuses this program's credential (401/403), the caches
 * are no longer refreshed: `credentialRefused` says so (credential-health.ts).
 */
import type { ApiKey, AudienceClaim, Deployment, FederatedCredential, SecretObject } from '../api/index.ts';
import { APIKEYS, AUDIENCE_CLAIMS, DEPLOYMENTS, FEDERATED_CREDENTIALS, GROUP, SIGNING_KEYS_SECRET, VERSION } from '../api/index.ts';
import { reportOn } from '../api/compromise.ts';
import { audienceClaimName, audiencesNotHeld, firstClaimant } from '../api/claims.ts';
import { paths, type KubeClient } from '../kube/client.ts';
import { CredentialHealth, type Refusal } from '../kube/credential-health.ts';
import { Informer, objectKey, timingForStaleness, type WatchTiming } from '../kube/informer.ts';
import { keepAll, withInternedStrings, withoutLastApplied, withoutManagedFields } from '../kube/keep.ts';
import type { Logger } from '../shared/log.ts';
import { describeSigningKeys, SIGNING_KEYS_DATA_KEY, signingKeySetOf } from '../shared/signing-keys.ts';
import { byCreation, federatedEntry, type FederatedEntry } from './federated.ts';
import type { KeyStore } from './key-store.ts';
import { deploymentEntry, keyEntry, type DeploymentEntry, type KeyEntry } from './keys.ts';
import { SigningKeys } from './signing.ts';

const KEY_ID_INDEX = 'keyId';
const SECRET_HASH_INDEX = 'secretHash';
const AUDIENCE_INDEX = 'audience';
const DEPLOYMENT_INDEX = 'deployment';

export interface KubeKeyStoreOptions {
  operatorNamespace: string;
  /** Watched namespaces; empty means all. */
  namespaces: string[];
  /** The shared default audiences (--audiences), which no Deployment can claim. */
  defaultAudiences: readonly string[];
  log: Logger;
  /** How often the credential is checked besides the informers' own requests (credential-health.ts). */
  credentialProbeIntervalMs?: number;
  /** --max-cache-staleness: the watches are shortened so that a healthy apiserver is heard from well within it (staleness.ts). */
  maxStalenessMs?: number;
}

/** Whether an update changes what a Deployment claims: its audiences, its identity, or its deletion. */
function claimsChanged(d: Deployment, old: Deployment | undefined): boolean {
  return !old || old.metadata.uid !== d.metadata.uid || !old.metadata.deletionTimestamp !== !d.metadata.deletionTimestamp
    || (old.spec?.audiences ?? []).join('\n') !== (d.spec?.audiences ?? []).join('\n');
}

export class KubeKeyStore implements KeyStore {
  readonly signing = new SigningKeys();
  private readonly keys = new Map<string, KeyEntry>();
  private readonly deployments = new Map<string, DeploymentEntry>();
  private readonly apiKeyInformer: Informer<ApiKey>;
  private readonly deploymentInformer: Informer<Deployment>;
  private readonly federatedInformer: Informer<FederatedCredential>;
  /** By `namespace/name`, with the CEL expression compiled once per watch event. */
  private readonly federated = new Map<string, FederatedEntry>();
  private readonly secretInformer: Informer<SecretObject>;
  /** The AudienceClaims of the operator's namespace: who holds each custom audience (api/claims.ts). */
  private readonly claimInformer: Informer<AudienceClaim>;
  private readonly operatorNamespace: string;
  private readonly log: Logger;
  private readonly defaultAudiences: readonly string[];
  private readonly health: CredentialHealth;

  constructor(client: KubeClient, opts: KubeKeyStoreOptions) {
    this.log = opts.log;
    this.defaultAudiences = opts.defaultAudiences;
    this.operatorNamespace = opts.operatorNamespace;
    const namespaces = opts.namespaces.length ? opts.namespaces : undefined;
    const crd = paths.groupVersion(GROUP, VERSION);
    // The probe reads at most one ApiKey where this program may list them: RBAC and credential in one request.
    this.health = new CredentialHealth({
      log: opts.log,
      probe: { client, path: paths.collection(GROUP, VERSION, APIKEYS, namespaces?.[0]), intervalMs: opts.credentialProbeIntervalMs },
    });
    const health = this.health;
    const watch: Partial<WatchTiming> | undefined = opts.maxStalenessMs === undefined ? undefined : timingForStaleness(opts.maxStalenessMs);
    // Field owners are most of a small object's size, kubectl apply's copy as large as the rest, and the token server reads neither.
    this.apiKeyInformer = new Informer<ApiKey>(client, {
      apiPrefix: crd, plural: APIKEYS, namespaces, log: opts.log, health, watch, keep: keepAll(withoutManagedFields(), withoutLastApplied(), withInternedStrings()),
    });
    this.deploymentInformer = new Informer<Deployment>(client, {
      apiPrefix: crd, plural: DEPLOYMENTS, namespaces, log: opts.log, health, watch, keep: keepAll(withoutManagedFields(), withoutLastApplied(), withInternedStrings()),
    });
    this.federatedInformer = new Informer<FederatedCredential>(client, {
      apiPrefix: crd, plural: FEDERATED_CREDENTIALS, namespaces, log: opts.log, health, watch, keep: keepAll(withoutManagedFields(), withoutLastApplied(), withInternedStrings()),
    });
    this.secretInformer = new Informer<SecretObject>(client, {
      apiPrefix: paths.groupVersion('', 'v1'), plural: 'secrets', namespaces: [opts.operatorNamespace],
      fieldSelector: `metadata.name=${SIGNING_KEYS_SECRET}`, log: opts.log, health, watch,
    });
    this.claimInformer = new Informer<AudienceClaim>(client, {
      apiPrefix: crd, plural: AUDIENCE_CLAIMS, namespaces: [opts.operatorNamespace], log: opts.log, watch,
      keep: keepAll(withoutManagedFields(), withoutLastApplied(), withInternedStrings()),
    });

    this.apiKeyInformer.addIndex(KEY_ID_INDEX, (ak) => (ak.status?.keyId ? [ak.status.keyId] : []));
    // A leak report names a secret by its hash alone: every hash a key's secrets ever had here.
    this.apiKeyInformer.addIndex(SECRET_HASH_INDEX, (ak) => [...new Set([ak.status?.secretHash, ak.status?.previousSecretHash,
      ak.status?.compromise?.secretHash, reportOn(ak.metadata.annotations)?.secretHash].filter((h): h is string => !!h))]);
    const onKey = (ak: ApiKey, old?: ApiKey) => {
      this.refreshKeyId(ak.status?.keyId);
      if (old?.status?.keyId !== ak.status?.keyId) this.refreshKeyId(old?.status?.keyId);
    };
    this.apiKeyInformer.on('add', onKey);
    this.apiKeyInformer.on('update', onKey);
    this.apiKeyInformer.on('delete', (ak) => this.refreshKeyId(ak.status?.keyId));

    // A Deployment's entry depends on the other claimants of its audiences: when what it claims
    // changes (audiences, identity, deletion), every claimant of those audiences is recomputed once;
    // any other update (its status, say) recomputes its own entry only.
    this.deploymentInformer.addIndex(AUDIENCE_INDEX, (d) => d.spec?.audiences ?? []);
    const onDeployment = (d: Deployment, old?: Deployment) => {
      if (!claimsChanged(d, old)) {
        this.refreshDeployment(d);
        return;
      }
      this.refreshClaimants([...d.spec?.audiences ?? [], ...old?.spec?.audiences ?? []]);
      if (!d.spec?.audiences?.length) this.refreshDeployment(d);
    };
    this.deploymentInformer.on('add', onDeployment);
    this.deploymentInformer.on('update', onDeployment);
    this.deploymentInformer.on('delete', (d) => {
      this.deployments.delete(objectKey(d));
      this.refreshClaimants(d.spec?.audiences ?? []);
    });

    // A claim made or released changes what every Deployment listing its audience holds.
    const onClaim = (c: AudienceClaim, old?: AudienceClaim) =>
      this.refreshClaimants([c.spec?.audience, old?.spec?.audience].filter((a): a is string => typeof a === 'string'));
    this.claimInformer.on('add', onClaim);
    this.claimInformer.on('update', onClaim);
    this.claimInformer.on('delete', onClaim);

    this.federatedInformer.addIndex(DEPLOYMENT_INDEX, (fc) => [`${fc.metadata.namespace}/${fc.spec.deploymentRef.name}`]);
    const onFederated = (fc: FederatedCredential) => this.federated.set(objectKey(fc), federatedEntry(fc));
    this.federatedInformer.on('add', onFederated);
    this.federatedInformer.on('update', onFederated);
    this.federatedInformer.on('delete', (fc) => this.federated.delete(objectKey(fc)));

    const onSecret = (s: SecretObject) => this.loadSigningKeys(s);
    this.secretInformer.on('add', onSecret);
    this.secretInformer.on('update', onSecret);
    // A deleted Secret costs no key: the last good ones sign and verify until the controller writes
    // the Secret again (it restores the keys it had), so no live token dies and no key signs unpublished.
    this.secretInformer.on('delete', () => {
      this.signing.problem = 'deleted';
      this.log.error({ keys: this.signing.size }, `the signing keys Secret ${SIGNING_KEYS_SECRET} was deleted; keeping the keys in memory`);
    });
  }

  start(): void {
    for (const i of this.informers()) i.start();
    this.health.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.informers().map((i) => i.stop()), this.health.stop()]);
  }

  keysWithSecretHash(secretHash: string): readonly KeyEntry[] {
    const out = new Set<KeyEntry>();
    for (const ak of this.apiKeyInformer.byIndex(SECRET_HASH_INDEX, secretHash)) {
      // Only the key a key id is served for (the first claimant), as every other lookup here.
      const entry = ak.status?.keyId ? this.keys.get(ak.status.keyId) : undefined;
      if (entry && entry.uid === ak.metadata.uid) out.add(entry);
    }
    return [...out];
  }

  credentialRefused(): Refusal | undefined {
    return this.health.refused();
  }

  private informers() {
    return [this.apiKeyInformer, this.deploymentInformer, this.federatedInformer, this.secretInformer, this.claimInformer] as const;
  }

  /**
   * Recomputes the entry of one key id from the index. When two ApiKeys
   * claim the same id (a restored backup, a status written by hand), the
   * first claimant keeps it (api/claims.ts, the controller's rule too): a
   * later claimant can never take a key id away or make it unusable.
   */
  private refreshKeyId(keyId: string | undefined): void {
    if (!keyId) return;
    const claimants = this.apiKeyInformer.byIndex(KEY_ID_INDEX, keyId);
    const first = firstClaimant(claimants);
    const entry = first ? keyEntry(first) : undefined;
    if (entry) this.keys.set(keyId, entry);
    else this.keys.delete(keyId);
    if (claimants.length > 1) {
      this.log.warn({ keyId, kept: first && objectKey(first), refused: claimants.filter((c) => c !== first).map(objectKey) },
        'several ApiKeys claim one key id; only the first claimant is served');
    }
  }

  /** Recomputes the entry of every Deployment that lists one of `audiences`, once each. */
  private refreshClaimants(audiences: readonly string[]): void {
    const seen = new Set<Deployment>();
    for (const aud of new Set(audiences)) {
      for (const d of this.deploymentInformer.byIndex(AUDIENCE_INDEX, aud)) {
        if (!seen.has(d)) this.refreshDeployment(d);
        seen.add(d);
      }
    }
  }

  /** Recomputes a Deployment's entry, with the custom audiences it does not hold. */
  private refreshDeployment(d: Deployment): void {
    const notHeld = audiencesNotHeld(d, (aud) => this.claimInformer.get(this.operatorNamespace, audienceClaimName(aud)), this.defaultAudiences);
    this.deployments.set(objectKey(d), deploymentEntry(d, notHeld));
  }

  private loadSigningKeys(s: SecretObject): void {
    try {
      const set = signingKeySetOf(s);
      if (!set) throw new Error(`no ${SIGNING_KEYS_DATA_KEY}`);
      this.signing.update(set);
      this.log.info({ keys: describeSigningKeys(set) }, 'signing keys loaded');
    } catch (err) {
      // Keep signing with the last good keys; the controller replaces a malformed Secret. V8's
      // SyntaxError quotes the JSON it failed on, which would be private keys: never log it.
      const why = err instanceof SyntaxError ? 'not valid JSON' : (err as Error).message;
      this.signing.problem = `malformed: ${why}`;
      this.log.error({ why, keys: this.signing.size }, `the signing keys Secret ${SIGNING_KEYS_SECRET} is malformed; keeping the previous keys`);
    }
  }

  key(keyId: string): KeyEntry | undefined {
    return this.keys.get(keyId);
  }

  deployment(key: string): DeploymentEntry | undefined {
    return this.deployments.get(key);
  }

  federatedCredentials(deployment: string): readonly FederatedEntry[] {
    const entries: FederatedEntry[] = [];
    for (const fc of this.federatedInformer.byIndex(DEPLOYMENT_INDEX, deployment)) {
      const e = this.federated.get(objectKey(fc));
      if (e) entries.push(e);
    }
    return entries.sort(byCreation);
  }

  federatedCredential(key: string): FederatedEntry | undefined {
    return this.federated.get(key);
  }

  lastHeard(): Record<string, number> {
    return {
      apikeys: this.apiKeyInformer.lastHeard(),
      deployments: this.deploymentInformer.lastHeard(),
      federatedcredentials: this.federatedInformer.lastHeard(),
      audienceclaims: this.claimInformer.lastHeard(),
      signing_keys: this.secretInformer.lastHeard(),
    };
  }

  synced(): boolean {
    return this.informers().every((i) => i.hasSynced());
  }

  waitForSync(): Promise<void> {
    return Promise.all(this.informers().map((i) => i.waitForSync())).then(() => undefined);
  }

  sizes(): Record<string, number> {
    return {
      apikeys: this.apiKeyInformer.size,
      deployments: this.deploymentInformer.size,
      federatedcredentials: this.federatedInformer.size,
      audienceclaims: this.claimInformer.size,
      key_ids: this.keys.size,
      signing_keys: this.signing.size,
    };
  }
}
