/**
 * A KeyStore of fixed objects, for unit tests and the benchmark: the same
 * entries a KubeKeyStore computes from watch events, put in by hand.
 */
import type { ApiKey, Deployment } from '../api/index.ts';
import type { SigningKeySet } from '../shared/signing-keys.ts';
import type { KeyStore } from './key-store.ts';
import { deploymentEntry, keyEntry, type DeploymentEntry, type KeyEntry } from './keys.ts';
import { SigningKeys } from './signing.ts';

/** A store of fixed objects, for tests and the benchmark. */
export class MemoryKeyStore implements KeyStore {
  readonly signing = new SigningKeys();
  private readonly keys = new Map<string, KeyEntry>();
  private readonly deployments = new Map<string, DeploymentEntry>();

  constructor(init: { apiKeys?: ApiKey[]; deployments?: Deployment[]; signingKeys?: SigningKeySet } = {}) {
    for (const d of init.deployments ?? []) this.putDeployment(d);
    for (const k of init.apiKeys ?? []) this.putApiKey(k);
    if (init.signingKeys) this.signing.update(init.signingKeys);
  }

  putApiKey(ak: ApiKey): void {
    const e = keyEntry(ak);
    if (e) this.keys.set(e.keyId, e);
  }

  deleteKey(keyId: string): void {
    this.keys.delete(keyId);
  }

  /** `audiencesTaken`: audiences of `d` another Deployment claimed first (KubeKeyStore works them out from its watch). */
  putDeployment(d: Deployment, audiencesTaken: readonly string[] = []): void {
    const e = deploymentEntry(d, audiencesTaken);
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

  sizes(): Record<string, number> {
    return { apikeys: this.keys.size, deployments: this.deployments.size, signing_keys: this.signing.size };
  }

  async stop(): Promise<void> {}
}
