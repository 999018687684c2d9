/**
 * The controller's informer caches: ApiKeys and FederatedCredentials
 * (indexed by their Deployment), Deployments, the credentials Secrets this controller manages (selected by
 * label, so a cluster's other Secrets are never cached), and, in the
 * operator's namespace, the signing-keys Secret and the AudienceClaims.
 */
import type { ApiKey, AudienceClaim, Deployment, FederatedCredential, SecretObject } from '../api/index.ts';
import { audienceClaimName } from '../api/claims.ts';
import { APIKEY_LABEL, APIKEYS, AUDIENCE_CLAIMS, DEPLOYMENTS, FEDERATED_CREDENTIALS, FIELD_MANAGER, GROUP, MANAGED_BY, MANAGED_BY_LABEL, SIGNING_KEYS_SECRET, VERSION } from '../api/index.ts';
import { paths, type KubeClient } from '../kube/client.ts';
import type { Cache } from '../kube/manager.ts';
import { Informer } from '../kube/informer.ts';
import { keepAll, withInternedStrings, withOwnMetadataFields, withoutLastApplied, withoutManagedFields } from '../kube/keep.ts';
import type { Logger } from '../shared/log.ts';
import type { ConfigMapObject, NamespaceObject } from './ca-bundle.ts';
import { CA_BUNDLE_CONFIGMAP } from './serving-cert.ts';

export const BY_DEPLOYMENT = 'deployment';
export const BY_KEY_ID = 'keyId';
export const BY_AUDIENCE = 'audience';

export interface CacheOptions {
  /** Watched namespaces; empty means all. */
  namespaces: string[];
  operatorNamespace: string;
  log: Logger;
  /** The operator makes the serving certificate: cache the CA bundle ConfigMaps (and, watching all namespaces, the namespaces). */
  servingCert?: boolean;
}

export class Caches {
  readonly apiKeys: Informer<ApiKey>;
  readonly deployments: Informer<Deployment>;
  readonly federatedCredentials: Informer<FederatedCredential>;
  readonly secrets: Informer<SecretObject>;
  readonly signingSecret: Informer<SecretObject>;
  readonly audienceClaims: Informer<AudienceClaim>;
  readonly operatorNamespace: string;
  /** The CA bundle ConfigMaps of the watched namespaces (only that name). */
  readonly caBundles: Informer<ConfigMapObject> | undefined;
  /** Every namespace, when all are watched and the operator makes the serving certificate. */
  readonly namespaces: Informer<NamespaceObject> | undefined;
  /** Watched namespaces; empty means all. */
  readonly watched: string[];

  constructor(client: KubeClient, opts: CacheOptions) {
    const { log } = opts;
    const namespaces = opts.namespaces.length ? opts.namespaces : undefined;
    const crds = paths.groupVersion(GROUP, VERSION);
    const core = paths.groupVersion('', 'v1');
    this.operatorNamespace = opts.operatorNamespace;
    // Field owners are most of a small object's size, and kubectl apply's copy of the object as large as the rest:
    // of the field owners only the label and annotation keys of this controller's own Secret writes are read (secret.ts).
    this.apiKeys = new Informer<ApiKey>(client, { apiPrefix: crds, plural: APIKEYS, namespaces, log, keep: keepAll(withoutManagedFields(), withoutLastApplied(), withInternedStrings()) });
    this.deployments = new Informer<Deployment>(client, { apiPrefix: crds, plural: DEPLOYMENTS, namespaces, log, keep: keepAll(withoutManagedFields(), withoutLastApplied(), withInternedStrings()) });
    this.federatedCredentials = new Informer<FederatedCredential>(client, {
      apiPrefix: crds, plural: FEDERATED_CREDENTIALS, namespaces, log, keep: keepAll(withoutManagedFields(), withoutLastApplied(), withInternedStrings()),
    });
    this.secrets = new Informer<SecretObject>(client, {
      apiPrefix: core, plural: 'secrets', namespaces, labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY},${APIKEY_LABEL}`, log,
      keep: keepAll(withOwnMetadataFields(FIELD_MANAGER), withInternedStrings()),
    });
    this.signingSecret = new Informer<SecretObject>(client, {
      apiPrefix: core, plural: 'secrets', namespaces: [opts.operatorNamespace],
      fieldSelector: `metadata.name=${SIGNING_KEYS_SECRET}`, log,
    });
    this.watched = opts.namespaces;
    this.caBundles = opts.servingCert ? new Informer<ConfigMapObject>(client, {
      apiPrefix: core, plural: 'configmaps', namespaces, fieldSelector: `metadata.name=${CA_BUNDLE_CONFIGMAP}`, log,
    }) : undefined;
    this.namespaces = opts.servingCert && !namespaces
      ? new Informer<NamespaceObject>(client, { apiPrefix: core, plural: 'namespaces', log, keep: keepAll(withoutManagedFields(), withoutLastApplied(), withInternedStrings()) })
      : undefined;
    this.audienceClaims = new Informer<AudienceClaim>(client, {
      apiPrefix: crds, plural: AUDIENCE_CLAIMS, namespaces: [opts.operatorNamespace], log, keep: keepAll(withoutManagedFields(), withoutLastApplied(), withInternedStrings()),
    });
    this.apiKeys.addIndex(BY_DEPLOYMENT, (ak) => [`${ak.metadata.namespace}/${ak.spec.deploymentRef.name}`]);
    this.deployments.addIndex(BY_AUDIENCE, (dep) => dep.spec.audiences ?? []);
    this.federatedCredentials.addIndex(BY_DEPLOYMENT, (fc) => [`${fc.metadata.namespace}/${fc.spec.deploymentRef.name}`]);
    this.apiKeys.addIndex(BY_KEY_ID, (ak) => (ak.status?.keyId ? [ak.status.keyId] : []));
  }

  get all(): Cache[] {
    return [this.apiKeys, this.deployments, this.federatedCredentials, this.secrets, this.signingSecret, this.audienceClaims,
      ...(this.caBundles ? [this.caBundles] : []), ...(this.namespaces ? [this.namespaces] : [])];
  }

  /** The ApiKeys that name the Deployment `namespace/name`. */
  apiKeysOf(namespace: string | undefined, name: string): ApiKey[] {
    return this.apiKeys.byIndex(BY_DEPLOYMENT, `${namespace}/${name}`);
  }

  /** The FederatedCredentials that name the Deployment `namespace/name`. */
  federatedCredentialsOf(namespace: string | undefined, name: string): FederatedCredential[] {
    return this.federatedCredentials.byIndex(BY_DEPLOYMENT, `${namespace}/${name}`);
  }

  /** The Deployments whose spec.audiences lists `audience`. */
  deploymentsWithAudience(audience: string): Deployment[] {
    return this.deployments.byIndex(BY_AUDIENCE, audience);
  }

  /** The ApiKeys whose status claims `keyId`. */
  apiKeysWithKeyId(keyId: string): ApiKey[] {
    return this.apiKeys.byIndex(BY_KEY_ID, keyId);
  }

  /** The namespaces the CA bundle goes to: the watched ones, else every one not being deleted. */
  bundleNamespaces(): string[] {
    if (!this.namespaces) return this.watched;
    return this.namespaces.list().filter((n) => n.status?.phase !== 'Terminating').map((n) => n.metadata!.name!);
  }

  namespaceActive(name: string): boolean {
    if (!this.namespaces) return this.watched.includes(name);
    const ns = this.namespaces.get(undefined, name);
    return ns !== undefined && ns.status?.phase !== 'Terminating' && !ns.metadata?.deletionTimestamp;
  }

  /** The AudienceClaim of `audience`, if any (api/claims.ts). */
  audienceClaim(audience: string): AudienceClaim | undefined {
    return this.audienceClaims.get(this.operatorNamespace, audienceClaimName(audience));
  }

  signingKeys(): SecretObject | undefined {
    return this.signingSecret.get(this.operatorNamespace, SIGNING_KEYS_SECRET);
  }
}
