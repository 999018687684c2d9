/**
 * What the console asks the cluster, always with the signed-in person's
 * client: their Deployments and ApiKeys, the key's Secret (read with their
 * own rights, to show a new secret once), the writes of the seed's flow, and
 * SelfSubjectAccessReviews that decide which buttons are enabled.
 */
import { COMPROMISED_ANNOTATION } from '../api/compromise.ts';
import type { ApiKey, Deployment } from '../api/index.ts';
import {
  API_VERSION, APIKEYS, credentialsOf, DEPLOYMENTS, GROUP, reportedSecretNameOf, ROTATE_ANNOTATION, VERSION, type SecretObject,
} from '../api/index.ts';
import { isNotFound, paths, selfSubjectReview, type KubeClient } from '../kube/client.ts';
import { secretMatchesHash } from '../keys/format.ts';
import { attempt } from './refusals.ts';

export interface AccessCheck {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export interface KeyCredentials { keyId: string; secret: string; tokenUrl: string; audience: string; secretName: string }

const deploymentPath = (ns?: string, name?: string) =>
  (name ? paths.object(GROUP, VERSION, DEPLOYMENTS, ns!, name) : paths.collection(GROUP, VERSION, DEPLOYMENTS, ns));
const apiKeyPath = (ns: string, name?: string) =>
  (name ? paths.object(GROUP, VERSION, APIKEYS, ns, name) : paths.collection(GROUP, VERSION, APIKEYS, ns));

export class PersonApi {
  readonly client: KubeClient;
  constructor(client: KubeClient) {
    this.client = client;
  }

  /** Deployments (apikeys.dev) of one namespace, or of all when `namespace` is undefined. */
  async listDeployments(namespace?: string): Promise<Deployment[]> {
    const list = await attempt({ verb: 'list', what: 'Deployments', namespace },
      () => this.client.list<Deployment>(deploymentPath(namespace)));
    return list.items;
  }

  getDeployment(namespace: string, name: string): Promise<Deployment> {
    return attempt({ verb: 'get', what: 'Deployments', namespace, name }, () => this.client.get<Deployment>(deploymentPath(namespace, name)));
  }

  /** The ApiKeys of one Deployment, by name. */
  async listApiKeys(namespace: string, deployment: string): Promise<ApiKey[]> {
    const list = await attempt({ verb: 'list', what: 'ApiKeys', namespace }, () => this.client.list<ApiKey>(apiKeyPath(namespace)));
    return list.items.filter((k) => k.spec.deploymentRef.name === deployment)
      .sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
  }

  getApiKey(namespace: string, name: string): Promise<ApiKey> {
    return attempt({ verb: 'get', what: 'ApiKeys', namespace, name }, () => this.client.get<ApiKey>(apiKeyPath(namespace, name)));
  }

  createApiKey(namespace: string, name: string, spec: ApiKey['spec']): Promise<ApiKey> {
    return attempt({ verb: 'create', what: 'ApiKeys', namespace, name },
      () => this.client.create<ApiKey>(apiKeyPath(namespace), { apiVersion: API_VERSION, kind: 'ApiKey', metadata: { name }, spec }));
  }

  /** Asks the operator for one rotation: a fresh value of the rotate annotation (a merge patch touches nothing else). */
  requestRotation(namespace: string, name: string, value: string): Promise<ApiKey> {
    return attempt({ verb: 'update', what: 'ApiKeys', namespace, name },
      () => this.client.mergePatch<ApiKey>(apiKeyPath(namespace, name), { metadata: { annotations: { [ROTATE_ANNOTATION]: value } } }));
  }

  /** The apikeys.dev/compromised annotation (api/compromise.ts), only on the version of the key that was read. */
  markCompromised(namespace: string, name: string, resourceVersion: string | undefined, value: string): Promise<ApiKey> {
    return attempt({ verb: 'update', what: 'ApiKeys', namespace, name },
      () => this.client.mergePatch<ApiKey>(apiKeyPath(namespace, name), { metadata: { resourceVersion, annotations: { [COMPROMISED_ANNOTATION]: value } } }));
  }

  /** Replaces spec.allowedNetworks (a merge patch of that field only); an empty list removes it. */
  setAllowedNetworks(namespace: string, name: string, networks: readonly string[]): Promise<ApiKey> {
    return attempt({ verb: 'patch', what: 'ApiKeys', namespace, name },
      () => this.client.mergePatch<ApiKey>(apiKeyPath(namespace, name), { spec: { allowedNetworks: networks.length ? networks : null } }));
  }

  deleteApiKey(namespace: string, name: string): Promise<unknown> {
    return attempt({ verb: 'delete', what: 'ApiKeys', namespace, name }, () => this.client.delete(apiKeyPath(namespace, name)));
  }

  /** Whether the Secret exists (read as the person). */
  async secretExists(namespace: string, name: string): Promise<boolean> {
    try {
      await attempt({ verb: 'get', what: 'Secrets', namespace, name }, () => this.client.get(paths.object('', 'v1', 'secrets', namespace, name)));
      return true;
    } catch (err) {
      if ((err as { status?: number }).status === 404) return false;
      throw err;
    }
  }

  /**
   * The key's credentials from its Secret, read with the person's rights;
   * undefined while the Secret does not hold the secret the status hashes yet.
   */
  async readCredentials(ak: ApiKey): Promise<KeyCredentials | undefined> {
    const namespace = ak.metadata.namespace!;
    const secretName = reportedSecretNameOf(ak);
    let s: SecretObject;
    try {
      s = await this.client.get<SecretObject>(paths.object('', 'v1', 'secrets', namespace, secretName));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const c = credentialsOf(s);
    return secretMatchesHash(c.secret, ak.status?.secretHash) ? { ...c, secretName } : undefined;
  }

  /** SelfSubjectAccessReviews, in parallel; a review that fails counts as "no". */
  async can(checks: AccessCheck[]): Promise<boolean[]> {
    return Promise.all(checks.map(async (c) => {
      try {
        const r = await this.client.create<{ status?: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
          apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: { ...c } },
        });
        return r.status?.allowed === true;
      } catch {
        return false;
      }
    }));
  }

  /** The person's user name as the apiserver sees it (SelfSubjectReview), if it answers. */
  async whoAmI(): Promise<string | undefined> {
    try {
      return (await selfSubjectReview(this.client)).username;
    } catch {
      return undefined;
    }
  }
}
