/**
 * A list of kubeconfig files (KUBECONFIG=a:b:c) merged the way kubectl
 * merges them: files that do not exist are skipped, the first file that
 * defines a cluster, user or context of a given name wins (a later one never
 * overrides nor conflicts), the first file that sets current-context decides
 * it, and relative paths in a file are resolved against that file's folder.
 * (client-node's KubeConfig.mergeConfig throws on a duplicate name and lets
 * the last current-context win; kubectl's rule is kept here.)
 */
import { existsSync, readFileSync } from 'node:fs';
import { delimiter } from 'node:path';
import { KubeConfig, type Cluster, type Context, type User } from './kubeconfig.ts';

/** The files of a KUBECONFIG-style list, in order, without empty entries or repeats. */
export function kubeconfigPaths(list: string): string[] {
  return [...new Set(list.split(delimiter).filter((f) => f !== ''))];
}

function firstOfEachName<T extends { name: string }>(into: T[], items: readonly T[]): void {
  for (const item of items) if (!into.some((x) => x.name === item.name)) into.push(item);
}

/** Merges the files that exist; undefined when none of them does. */
export function mergeKubeconfigFiles(files: string[]): KubeConfig | undefined {
  const clusters: Cluster[] = [];
  const users: User[] = [];
  const contexts: Context[] = [];
  let currentContext: string | undefined;
  let found = false;
  for (const file of files) {
    if (!existsSync(file)) continue;
    found = true;
    // An empty file is a valid, empty kubeconfig for kubectl.
    if (readFileSync(file, 'utf8').trim() === '') continue;
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    firstOfEachName(clusters, kc.getClusters());
    firstOfEachName(users, kc.getUsers());
    firstOfEachName(contexts, kc.getContexts());
    currentContext ||= kc.getCurrentContext() || undefined;
  }
  if (!found) return undefined;
  const merged = new KubeConfig();
  merged.loadFromOptions({ clusters, users, contexts, currentContext: currentContext ?? '' });
  return merged;
}
