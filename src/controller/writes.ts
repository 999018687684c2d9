/**
 * Every write the controller's reconciles make, against the apiserver. The
 * reconcilers decide; this module only speaks the API: the ownerReference as
 * a merge patch, statuses and Secrets as server-side applies under the
 * contract's field manager, except a key's first Secret: a create, which
 * fails when any Secret of its name exists.
 *
 * Every write of a decision carries the resourceVersion the decision was
 * taken on (the ownerReference patch and the status applies), so a decision
 * taken on a stale cache fails with a conflict and is retried on fresh state.
 * A `beforeWrite` hook runs before each write: production refuses writes from
 * a replica that does not lead; the crash-safety test stops dead there.
 */
import type { ApiKey, AudienceClaim, Deployment, FederatedCredential, SecretObject } from '../api/index.ts';
import { audienceClaimName } from '../api/claims.ts';
import {
  API_VERSION, APIKEYS, AUDIENCE_CLAIMS, credentialsOwnerRef, DEPLOYMENTS, FEDERATED_CREDENTIALS, FIELD_MANAGER, GROUP, KEY_ID_ANNOTATION, VERSION,
} from '../api/index.ts';
import { isAlreadyExists, isConflict, isNotFound, paths, type KubeClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { ApiKeyStatus, ApiKeyWrites } from './apikey.ts';
import type { DeploymentStatus } from './deployment.ts';
import type { FederatedCredentialWrites } from './federated-credential.ts';

export interface WriteHooks {
  /** Runs before every write; a throw refuses the write (NotLeaderError when this replica does not lead). */
  beforeWrite?(): void;
  /** Runs after every ApiKey write with the version it replaced and the one the apiserver answered. */
  onApiKeyWritten?(before: ApiKey, after: ApiKey): void;
}

type Owned = ApiKey | Deployment | FederatedCredential;

const objectPath = (plural: string, o: Owned) => paths.object(GROUP, VERSION, plural, o.metadata.namespace!, o.metadata.name!);
const secretPath = (s: SecretObject) => paths.object('', 'v1', 'secrets', s.metadata!.namespace!, s.metadata!.name!);

/** Server-side apply of the status subresource, based on the resourceVersion the decision was made on. */
function applyStatus<T extends Owned>(client: KubeClient, plural: string, kind: T['kind'], o: T, status: T['status']): Promise<T> {
  return client.apply<T>(`${objectPath(plural, o)}/status`, {
    apiVersion: API_VERSION, kind,
    metadata: { name: o.metadata.name, namespace: o.metadata.namespace, resourceVersion: o.metadata.resourceVersion },
    status,
  }, FIELD_MANAGER);
}

/** The writes of the ApiKey reconcile (see apikey.ts for their order). */
export function apiKeyWrites(client: KubeClient, events: Pick<EventRecorder, 'emit'>, hooks: WriteHooks = {}): ApiKeyWrites {
  const before = () => hooks.beforeWrite?.();
  const written = (ak: ApiKey, updated: ApiKey) => {
    hooks.onApiKeyWritten?.(ak, updated);
    return updated;
  };
  return {
    async setOwner(ak, dep, keyId) {
      before();
      const refs = [...(ak.metadata.ownerReferences ?? []),
        { apiVersion: API_VERSION, kind: 'Deployment', name: dep.metadata.name!, uid: dep.metadata.uid! }];
      const annotations = keyId === undefined ? undefined : { [KEY_ID_ANNOTATION]: keyId };
      return written(ak, await client.mergePatch<ApiKey>(objectPath(APIKEYS, ak),
        { metadata: { resourceVersion: ak.metadata.resourceVersion, ownerReferences: refs, annotations } }));
    },
    async setKeyIdAnnotation(ak, keyId) {
      before();
      return written(ak, await client.mergePatch<ApiKey>(objectPath(APIKEYS, ak),
        { metadata: { resourceVersion: ak.metadata.resourceVersion, annotations: { [KEY_ID_ANNOTATION]: keyId } } }));
    },
    async adoptSecret(secret, ak) {
      before();
      // A merge patch replaces the list: the references to the key's earlier incarnation go, any other stays.
      const refs = (secret.metadata?.ownerReferences ?? []).filter((r) => !(r.kind === 'ApiKey' && r.name === ak.metadata.name));
      refs.push(credentialsOwnerRef(ak));
      return client.mergePatch<SecretObject>(secretPath(secret),
        { metadata: { resourceVersion: secret.metadata?.resourceVersion, ownerReferences: refs } });
    },
    async applyStatus(ak, status: ApiKeyStatus) {
      before();
      return written(ak, await applyStatus(client, APIKEYS, 'ApiKey', ak, status));
    },
    async applySecret(secret) {
      before();
      return client.apply<SecretObject>(secretPath(secret), secret, FIELD_MANAGER);
    },
    async createSecret(secret) {
      before();
      return client.create<SecretObject>(paths.collection('', 'v1', 'secrets', secret.metadata!.namespace), secret, { fieldManager: FIELD_MANAGER });
    },
    async removeSecretMetadata(secret, keys) {
      before();
      const nulls = (ks: string[]) => ks.length ? Object.fromEntries(ks.map((k) => [k, null])) : undefined;
      return client.mergePatch<SecretObject>(secretPath(secret),
        { metadata: { labels: nulls(keys.labels), annotations: nulls(keys.annotations) } });
    },
    event(ak, type, reason, action, note) {
      events.emit(ak, type, reason, action, note);
    },
  };
}

/** The writes of the FederatedCredential reconcile: its ownerReference to its Deployment, and its status. */
export function federatedCredentialWrites(client: KubeClient, events: Pick<EventRecorder, 'emit'>, hooks: WriteHooks = {}):
FederatedCredentialWrites {
  const before = () => hooks.beforeWrite?.();
  return {
    async setOwner(fc, dep) {
      before();
      const refs = [...(fc.metadata.ownerReferences ?? []),
        { apiVersion: API_VERSION, kind: 'Deployment', name: dep.metadata.name!, uid: dep.metadata.uid! }];
      return client.mergePatch<FederatedCredential>(objectPath(FEDERATED_CREDENTIALS, fc),
        { metadata: { resourceVersion: fc.metadata.resourceVersion, ownerReferences: refs } });
    },
    async applyStatus(fc, status) {
      before();
      return applyStatus(client, FEDERATED_CREDENTIALS, 'FederatedCredential', fc, status);
    },
    event(fc, type, reason, action, note) {
      events.emit(fc, type, reason, action, note);
    },
  };
}

/** The one write of the Deployment reconcile: its status. */
export function deploymentStatusWrite(client: KubeClient, hooks: WriteHooks = {}):
(dep: Deployment, status: DeploymentStatus) => Promise<Deployment> {
  return (dep, status) => {
    hooks.beforeWrite?.();
    return applyStatus(client, DEPLOYMENTS, 'Deployment', dep, status);
  };
}

export interface AudienceClaimWrites {
  /**
   * Claims `audience` for `dep` by creating its AudienceClaim in the operator's namespace: the claim,
   * or undefined when one exists already (the apiserver refuses a second object of the name).
   */
  claim(audience: string, dep: Deployment): Promise<AudienceClaim | undefined>;
  /**
   * Releases a claim: deletes it, with the uid and resourceVersion it was judged on as preconditions,
   * so a newer claim of the same audience is never deleted by a stale decision. Gone already or
   * changed since: nothing to do (its events bring a fresh decision).
   */
  release(claim: AudienceClaim): Promise<void>;
}

/** The writes of the AudienceClaims (api/claims.ts): a create to claim, a delete to release; claims are immutable. */
export function audienceClaimWrites(client: KubeClient, namespace: string, hooks: WriteHooks = {}): AudienceClaimWrites {
  return {
    async claim(audience, dep) {
      hooks.beforeWrite?.();
      const body: AudienceClaim = {
        apiVersion: API_VERSION, kind: 'AudienceClaim',
        metadata: { name: audienceClaimName(audience), namespace },
        spec: { audience, holder: { namespace: dep.metadata.namespace!, name: dep.metadata.name!, uid: dep.metadata.uid! } },
      };
      try {
        return await client.create<AudienceClaim>(paths.collection(GROUP, VERSION, AUDIENCE_CLAIMS, namespace), body, { fieldManager: FIELD_MANAGER });
      } catch (err) {
        if (isAlreadyExists(err)) return undefined;
        throw err;
      }
    },
    async release(claim) {
      hooks.beforeWrite?.();
      try {
        await client.delete(paths.object(GROUP, VERSION, AUDIENCE_CLAIMS, namespace, claim.metadata.name!), {
          apiVersion: 'v1', kind: 'DeleteOptions',
          preconditions: { uid: claim.metadata.uid, resourceVersion: claim.metadata.resourceVersion },
        });
      } catch (err) {
        if (isNotFound(err) || isConflict(err)) return;
        throw err;
      }
    },
  };
}
