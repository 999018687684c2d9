/**
 * The cluster a plugin command talks to, chosen the way kubectl chooses it
 * (--kubeconfig, KUBECONFIG, ~/.kube/config or in-cluster; --context; -n,
 * else the context's namespace, else "default"), and the reads every command
 * shares: ApiKeys, Deployments and credentials Secrets, each failure turned
 * into a sentence that names what was refused.
 */
import type { KubeConfig } from '../../kube/kubeconfig.ts';
import type { ApiKey, Deployment } from '../../api/index.ts';
import { APIKEYS, credentialsOf, DEPLOYMENTS, GROUP, reportedSecretNameOf, VERSION, type SecretObject } from '../../api/index.ts';
import { isNotFound, KubeClient, paths, type KubeList } from '../../kube/client.ts';
import { ConfigError, defaultNamespace, loadKubeConfig } from '../../kube/config.ts';
import { secretMatchesHash } from '../../keys/format.ts';
import { kubeFailure, oneLine, PluginError, PluginUsageError, type ClusterInfo, type KubeAction } from '../../client/errors.ts';
import { APIKEY_RESOURCE, DEPLOYMENT_RESOURCE, type StoredCredentials } from './resources.ts';

export interface ConnectionFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

export class Session {
  readonly kc: KubeConfig;
  readonly client: KubeClient;
  readonly namespace: string;
  readonly cluster: ClusterInfo;

  constructor(flags: ConnectionFlags) {
    let kc: KubeConfig;
    try {
      kc = loadKubeConfig({ kubeconfig: flags.kubeconfig });
      if (flags.context !== undefined) {
        if (!kc.getContexts().some((c) => c.name === flags.context)) {
          throw new PluginUsageError(`context "${flags.context}" is not in the kubeconfig; see: kubectl config get-contexts`);
        }
        kc.setCurrentContext(flags.context);
      }
      if (!kc.getCurrentCluster()) throw new ConfigError(`the kubeconfig's context "${kc.getCurrentContext()}" has no cluster`);
    } catch (err) {
      if (err instanceof PluginError) throw err;
      throw new PluginError(`cannot load the kubeconfig: ${(err as Error).message}`);
    }
    this.kc = kc;
    try {
      // Refuses, before anything runs, a user kubectl would refuse (a gcp or azure auth provider).
      this.client = new KubeClient(kc);
    } catch (err) {
      throw new PluginError(`cannot use the kubeconfig's context "${kc.getCurrentContext()}": ${oneLine((err as Error).message)}`);
    }
    const context = kc.getContextObject(kc.getCurrentContext());
    this.namespace = flags.namespace || context?.namespace || defaultNamespace(kc);
    this.cluster = { server: kc.getCurrentCluster()!.server, context: kc.getCurrentContext() };
  }

  /** Runs one API call; any failure becomes a PluginError that says what was refused. */
  async call<T>(action: KubeAction, f: (c: KubeClient) => Promise<T>): Promise<T> {
    try {
      return await f(this.client);
    } catch (err) {
      throw kubeFailure(err, action, this.cluster);
    }
  }

  /** The ApiKey NAME, or the collection of this namespace's keys (of every namespace with `allNamespaces`). */
  apiKeyPath(name?: string, allNamespaces = false): string {
    return name
      ? paths.object(GROUP, VERSION, APIKEYS, this.namespace, name)
      : paths.collection(GROUP, VERSION, APIKEYS, allNamespaces ? undefined : this.namespace);
  }

  deploymentPath(name?: string, allNamespaces = false): string {
    return name
      ? paths.object(GROUP, VERSION, DEPLOYMENTS, this.namespace, name)
      : paths.collection(GROUP, VERSION, DEPLOYMENTS, allNamespaces ? undefined : this.namespace);
  }

  /** This namespace's events (events.k8s.io/v1). */
  eventsPath(): string {
    return paths.collection('events.k8s.io', 'v1', 'events', encodeURIComponent(this.namespace));
  }

  /** The ApiKey, or a clear "not found" that says where it looked and how to list the keys. */
  getApiKey(name: string): Promise<ApiKey> {
    return this.call({
      verb: 'get', resource: APIKEY_RESOURCE, namespace: this.namespace, name,
      notFound: `ApiKey "${name}" not found in namespace "${this.namespace}"; list the keys with: kubectl apikey list -n ${this.namespace}`,
    }, (c) => c.get<ApiKey>(this.apiKeyPath(name)));
  }

  /** The Deployment (apikeys.dev), or a clear "not found" pointing at kubectl get deployments.apikeys.dev. */
  getDeployment(name: string): Promise<Deployment> {
    return this.call({
      verb: 'get', resource: DEPLOYMENT_RESOURCE, namespace: this.namespace, name,
      notFound: `Deployment "${name}" (${DEPLOYMENT_RESOURCE}) not found in namespace "${this.namespace}"; ` +
        `see the Deployments there with: kubectl get deployments.apikeys.dev -n ${this.namespace}`,
    }, (c) => c.get<Deployment>(this.deploymentPath(name)));
  }

  /** The objects at `path`; only those matching the label selector `selector` (kubectl's -l) when given. */
  async list<T>(resource: string, path: string, allNamespaces: boolean, selector?: string): Promise<KubeList<T>> {
    return this.call({ verb: 'list', resource, namespace: allNamespaces ? undefined : this.namespace },
      (c) => c.list<T>(path, selector === undefined ? {} : { labelSelector: selector }));
  }

  /**
   * Reads the key's credentials Secret. `undefined` when the Secret does not
   * hold the secret the status describes yet (the controller writes the status
   * of a rotation before the Secret), so callers can wait for it.
   */
  async readCredentials(ak: ApiKey): Promise<StoredCredentials | undefined> {
    const secretName = reportedSecretNameOf(ak);
    const action = { verb: 'get', resource: 'secrets', namespace: this.namespace, name: secretName };
    let s: SecretObject;
    try {
      s = await this.client.get<SecretObject>(paths.object('', 'v1', 'secrets', this.namespace, secretName));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      const failure = kubeFailure(err, action, this.cluster);
      if ((err as { status?: number }).status === 403) {
        throw new PluginError(`${failure.message}. The credentials live in that Secret; whoever may read it (or a Pod using envFrom: secretRef) can use them`);
      }
      throw failure;
    }
    const credentials = credentialsOf(s);
    if (!secretMatchesHash(credentials.secret, ak.status?.secretHash)) return undefined;
    return { ...credentials, secretName };
  }
}
