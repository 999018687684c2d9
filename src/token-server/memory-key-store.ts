/**
 * A KeyStore of fixed objects, for unit tests and the benchmark: the same
 * entries a KubeKeyStore computes from watch events, put in by hand.
 */
import type { ApiKey, Deployment, FederatedCredential } from '../api/index.ts';
import { byCreation, federatedEntry, type FederatedEntry } from './federated.ts';
import type { SigningKeySet } from '../shared/signing-keys.ts';
import type { KeyStore } from './key-store.ts';
import { deploymentEntry, keyEntry, type DeploymentEntry, type KeyEntry } from './keys.ts';
import { SigningKeys } from './signing.ts';

/** A store of fixed objects, for tests and the benchmark. */
export class MemoryKeyStore implements KeyStore {
  readonly signing = new SigningKeys();
  private readonly keys = new Map<string, KeyEntry>();
  private readonly deployments = new Map<string, DeploymentEntry>();
  private readonly federated = new Map<string, FederatedEntry>();

  constructor(init: {
    apiKeys?: ApiKey[]; deployments?: Deployment[]; federatedCredentials?: FederatedCredential[]; signingKeys?: SigningKeySet;
  } = {}) {
    for (const d of init.deployments ?? []) this.putDeployment(d);
    for (const k of init.apiKeys ?? []) this.putApiKey(k);
    for (const f of init.federatedCredentials ?? []) this.putFederatedCredential(f);
    if (init.signingKeys) this.signing.update(init.signingKeys);
  }

  putApiKey(ak: ApiKey): void {
    const e = keyEntry(ak);
    if (e) this.keys.set(e.keyId, e);
  }

  putFederatedCredential(fc: FederatedCredential): void {
    const e = federatedEntry(fc);
    this.federated.set(`${e.namespace}/${e.name}`, e);
  }

  deleteFederatedCredential(key: string): void {
    this.federated.delete(key);
  }

  federatedCredentials(deployment: string): readonly FederatedEntry[] {
    return [...this.federated.values()].filter((f) => f.deployment === deployment).sort(byCreation);
  }

  federatedCredential(key: string): FederatedEntry | undefined {
    return this.federated.get(key);
  }

  deleteKey(keyId: string): void {
    this.keys.delete(keyId);
  }

  /** `audiencesNotHeld`: custom audiences of `d` that no AudienceClaim gives it (KubeKeyStore works them out from its watch). */
  putDeployment(d: Deployment, audiencesNotHeld: readonly string[] = []): void {
    const e = deploymentEntry(d, audiencesNotHeld);
    this.deployments.set(`${e.namespace}/${e.name}`, e);
  }

  deleteDeployment(key: string): void {
    this.deployments.delete(key);
  }

  key(keyId: string): KeyEntry | undefined {
    return this.keys.get(keyId);
  }

  deployment(key: string): DeploymentEntry | undefined {
    return this.deployments.get(key);
  }

  synced(): boolean {
    return true;
  }

  /** Never: there is no apiserver. */
  credentialRefused(): undefined {
    return undefined;
  }

  /** Watches nothing: never stale. */
  lastHeard(): Record<string, number> {
    return {};
  }

  sizes(): Record<string, number> {
    return { apikeys: this.keys.size, deployments: this.deployments.size, federatedcredentials: this.federated.size, signing_keys: this.signing.size };
  }

  async stop(): Promise<void> {}
}
