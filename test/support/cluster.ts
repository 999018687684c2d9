/**
 * What an integration test needs of the shared control plane: an admin
 * client, a namespace of its own, kubectl, and credentials of a
 * ServiceAccount obtained through TokenRequest (the way the operator runs).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { bearerTokenKubeconfig, readState, type ClusterState } from '../cluster/controlplane.ts';
import { run, type Run } from './run.ts';

export function clusterState(): ClusterState {
  const state = readState(inject('clusterDir'));
  if (!state) throw new Error('no control plane state; is the global setup running?');
  return state;
}

export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(clusterState().kubeconfig);
  return kc;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A namespace of one test file; `cleanup` deletes it (its contents go with it). */
export interface TestNamespace { name: string; cleanup(): Promise<void> }

export async function createNamespace(prefix = 'test'): Promise<TestNamespace> {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const name = uniqueName(prefix);
  await core.createNamespace({ body: { metadata: { name } } });
  return {
    name,
    cleanup: async () => {
      await core.deleteNamespace({ name }).catch(() => undefined);
    },
  };
}

export function kubectl(args: string[], opts: { kubeconfig?: string; input?: string } = {}): Promise<Run> {
  const state = clusterState();
  return run(state.binaries.kubectl, ['--kubeconfig', opts.kubeconfig ?? state.kubeconfig, ...args], { input: opts.input });
}

/** Creates a ServiceAccount (if needed) and returns a fresh TokenRequest token of it, bound to `audiences` (none: the apiserver's); the token is never printed. */
export async function serviceAccountToken(namespace: string, name: string, audiences: string[] = []): Promise<string> {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }).catch((e: unknown) => {
    if ((e as { code?: number }).code !== 409) throw e;
  });
  const tr = await core.createNamespacedServiceAccountToken({
    name, namespace, body: { spec: { audiences, expirationSeconds: 3600 } },
  });
  const token = tr.status?.token;
  if (!token) throw new Error('TokenRequest returned no token');
  return token;
}

/**
 * Creates a ServiceAccount (if needed), gets a token for it with TokenRequest,
 * and writes a kubeconfig that authenticates with that token only.
 */
export async function serviceAccountKubeconfig(namespace: string, name: string, dir: string): Promise<string> {
  const token = await serviceAccountToken(namespace, name);
  const file = join(dir, `kubeconfig-${namespace}-${name}`);
  const cluster = { server: clusterState().server, 'certificate-authority-data': adminKubeConfig().getCurrentCluster()?.caData ?? '' };
  writeFileSync(file, bearerTokenKubeconfig({ cluster, token, user: name, namespace }), { mode: 0o600 });
  return file;
}
