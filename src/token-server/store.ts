/**
 * What the endpoints read: keys by id, Deployments by `namespace/name`, and
 * the signing keys. In production a KubeStore (cache.ts) fills it from
 * watches; unit tests and the benchmark fill a MemoryStore with the same
 * objects, so the endpoints cannot tell the difference.
 */
import type { ApiKey, Deployment } from '../api/index.ts';
import type { SigningKeySet } from '../shared/signing-keys.ts';
import { deploymentEntry, keyEntry, type DeploymentEntry, type KeyEntry } from './keys.ts';
import { SigningKeys } from './signing.ts';

export interface KeyStore {
  /** The key with this id; undefined when unknown, deleted, or claimed by two ApiKeys. */
  key(keyId: string): KeyEntry | undefined;
  /** A Deployment by `namespace/name`. */
  deployment(key: string): DeploymentEntry | undefined;
  readonly signing: SigningKeys;
  /** Every cache has listed once. */
  synced(): boolean;
  /** Object counts by resource, for the metrics. */
  sizes(): Record<string, number>;
  stop(): Promise<void>;
}

/** A store of fixed objects, for tests and the benchmark. */
export class MemoryStore implements KeyStore {
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

  putDeployment(d: Deployment): void {
    const e = deploymentEntry(d);
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
