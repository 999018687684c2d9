/**
 * Where to find the cluster and which namespace is ours, the way kubectl
 * decides: an explicit kubeconfig (flag or KUBECONFIG, either a list of files
 * merged as kubectl merges them) wins, inside a pod the
 * ServiceAccount is used (never the localhost:8080 fallback), and the
 * operator's namespace is POD_NAMESPACE, the ServiceAccount's namespace, the
 * kubeconfig context's namespace, or `default`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { kubeconfigPaths, mergeKubeconfigFiles } from './kubeconfig-files.ts';
import { KubeConfig } from './kubeconfig.ts';

/**
 * Where a pod's ServiceAccount files are found: / in a pod. The in-cluster
 * path can be run outside a pod (the tests do) by pointing this prefix at a
 * folder holding var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}.
 */
const podRoot = () => process.env.APIKEY_OPERATOR_POD_ROOT ?? '';
const saNamespaceFile = () => `${podRoot()}/var/run/secrets/kubernetes.io/serviceaccount/namespace`;
const saTokenFile = () => `${podRoot()}/var/run/secrets/kubernetes.io/serviceaccount/token`;

export class ConfigError extends Error {}

export function loadKubeConfig(opts: { kubeconfig?: string; context?: string } = {}): KubeConfig {
  let kc = new KubeConfig();
  const list = opts.kubeconfig || process.env.KUBECONFIG;
  if (list) {
    const files = kubeconfigPaths(list);
    const merged = mergeKubeconfigFiles(files);
    if (!merged) {
      throw new ConfigError(files.length > 1
        ? `none of the kubeconfig files ${files.join(', ')} exists`
        : `kubeconfig ${files[0] ?? list} does not exist`);
    }
    kc = merged;
  } else if (process.env.KUBERNETES_SERVICE_HOST) {
    kc.loadFromCluster(podRoot());
  } else {
    const home = `${process.env.HOME ?? ''}/.kube/config`;
    if (!existsSync(home)) {
      throw new ConfigError('no cluster configured: set --kubeconfig or KUBECONFIG, or run inside a pod');
    }
    kc.loadFromFile(home);
  }
  if (opts.context) kc.setCurrentContext(opts.context);
  if (!kc.getCurrentCluster()) throw new ConfigError(`the kubeconfig has no current cluster`);
  return kc;
}

/**
 * In a pod without an explicit kubeconfig, waits (up to `timeoutMs`) for the
 * ServiceAccount token to appear: in the chart's sidecar mode the controller
 * container writes the token server's token there just after the pod starts.
 * Anywhere else it returns at once.
 */
export async function waitForInClusterToken(opts: { kubeconfig?: string; timeoutMs?: number } = {}): Promise<void> {
  if (opts.kubeconfig || process.env.KUBECONFIG || !process.env.KUBERNETES_SERVICE_HOST) return;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const end = Date.now() + timeoutMs;
  let told = false;
  while (!existsSync(saTokenFile()) || !existsSync(saNamespaceFile())) {
    if (Date.now() > end) throw new ConfigError(`no ServiceAccount token at ${saTokenFile()} after ${timeoutMs / 1000}s`);
    if (!told) {
      process.stderr.write(`waiting for the ServiceAccount token at ${saTokenFile()}\n`);
      told = true;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function defaultNamespace(kc: KubeConfig): string {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  if (process.env.KUBERNETES_SERVICE_HOST && existsSync(saNamespaceFile())) {
    return readFileSync(saNamespaceFile(), 'utf8').trim();
  }
  const ctx = kc.getContextObject(kc.getCurrentContext());
  return ctx?.namespace ?? 'default';
}
