/**
 * The CA bundle of the token server's serving certificate, published in every
 * watched namespace as the ConfigMap CA_BUNDLE_CONFIGMAP (key `ca.crt`), the
 * way kube-root-ca.crt publishes the cluster's CA: a Pod mounts it and
 * verifies the token endpoint with it. Kept equal to the CA Secret's bundle
 * (serving-cert.ts), re-created when deleted, made in a namespace created
 * later; never in a namespace being deleted. Only the ConfigMap of that name
 * is ever read or written.
 */
import { MANAGED_BY, MANAGED_BY_LABEL } from '../api/index.ts';
import type { KubeObject } from '../kube/types.ts';
import { isAlreadyExists, isConflict, isNotFound, paths, type KubeClient } from '../kube/client.ts';
import { CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY } from './serving-cert.ts';

export interface ConfigMapObject extends KubeObject { data?: Record<string, string> }
export interface NamespaceObject extends KubeObject { status?: { phase?: string } }

export interface CaBundleDeps {
  client: KubeClient;
  cached(namespace: string): ConfigMapObject | undefined;
  /** The bundle to publish; undefined until the serving certificate's first pass. */
  bundle(): string | undefined;
  /** False for a namespace that is being deleted (or gone). */
  namespaceActive(namespace: string): boolean;
  beforeWrite?(): void;
}

/** Makes the namespace's ConfigMap hold the bundle; returns ms to look again, if it must. */
export async function reconcileCaBundle(deps: CaBundleDeps, namespace: string): Promise<number | undefined> {
  const bundle = deps.bundle();
  if (bundle === undefined) return 1000;
  if (!deps.namespaceActive(namespace)) return undefined;
  const current = deps.cached(namespace);
  if (current?.data?.[CA_BUNDLE_KEY] === bundle) return undefined;
  const body: ConfigMapObject = {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {
      name: CA_BUNDLE_CONFIGMAP, namespace,
      labels: { ...current?.metadata?.labels, [MANAGED_BY_LABEL]: MANAGED_BY },
      annotations: {
        ...current?.metadata?.annotations,
        'apikeys.dev/description': 'CA bundle of the apikey-operator token endpoint: mount it and verify TOKEN_URL with ca.crt',
      },
      resourceVersion: current?.metadata?.resourceVersion,
    },
    data: { [CA_BUNDLE_KEY]: bundle },
  };
  deps.beforeWrite?.();
  try {
    if (current) await deps.client.replace(paths.object('', 'v1', 'configmaps', namespace, CA_BUNDLE_CONFIGMAP), body);
    else await deps.client.create(paths.collection('', 'v1', 'configmaps', namespace), body);
  } catch (err) {
    // The cache is behind (made or changed meanwhile), or the namespace went: look again shortly.
    if (isAlreadyExists(err) || isConflict(err) || isNotFound(err)) return 1000;
    throw err;
  }
  return undefined;
}
