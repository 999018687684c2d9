/**
 * What the endpoints read: keys by id, Deployments by `namespace/name`,
 * FederatedCredentials by Deployment and by `namespace/name`, and the signing keys. In production a KubeKeyStore (kube-key-store.ts) fills it
 * from watches; unit tests and the benchmark fill a MemoryKeyStore
 * (memory-key-store.ts) with the same objects, so the endpoints cannot tell
 * the difference.
 */
import type { Refusal } from '../kube/credential-health.ts';
import type { FederatedEntry } from './federated.ts';
import type { DeploymentEntry, KeyEntry } from './keys.ts';
import type { SigningKeys } from './signing.ts';

export interface KeyStore {
  /** The key with this id; undefined when unknown, deleted, or claimed by two ApiKeys. */
  key(keyId: string): KeyEntry | undefined;
  /** A Deployment by `namespace/name`. */
  deployment(key: string): DeploymentEntry | undefined;
  /** The FederatedCredentials that name the Deployment `namespace/name`, in the order they are tried. */
  federatedCredentials(deployment: string): readonly FederatedEntry[];
  /** A FederatedCredential by `namespace/name`. */
  federatedCredential(key: string): FederatedEntry | undefined;
  readonly signing: SigningKeys;
  /** Every cache has listed once. */
  synced(): boolean;
  /**
   * Set while the Kubernetes API refuses this program's credential (401 or
   * 403): the caches are no longer refreshed, so a key deleted meanwhile would
   * still be found. The server is then not ready and refuses to serve.
   */
  credentialRefused(): Refusal | undefined;
  /**
   * When (performance.now(), monotonic ms) each cache last heard from the Kubernetes API, by cache
   * name (0: not yet); empty for a store that watches nothing. For
   * --max-cache-staleness (staleness.ts).
   */
  lastHeard(): Record<string, number>;
  /** Object counts by resource, for the metrics. */
  sizes(): Record<string, number>;
  stop(): Promise<void>;
}
