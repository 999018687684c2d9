/**
 * The names shell completion offers from the cluster: the keys and
 * Deployments of the namespace the words name (else the context's), the
 * namespaces, and the kubeconfig's contexts. Completion must never print an
 * error into the shell nor hang it: every failure is an empty list, and every
 * lookup gives up after a few seconds.
 */
import type { ApiKey, Deployment } from '../../api/index.ts';
import { loadKubeConfig } from '../../kube/config.ts';
import type { NameSource } from './completion.ts';
import { APIKEY_RESOURCE, DEPLOYMENT_RESOURCE } from './resources.ts';
import { Session, type ConnectionFlags } from './session.ts';

const LOOKUP_TIMEOUT_MS = 4000;

async function quietly(f: () => Promise<string[]>): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string[]>((resolve) => { timer = setTimeout(() => resolve([]), LOOKUP_TIMEOUT_MS); });
  try {
    return await Promise.race([f().catch(() => []), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const namesOf = (items: { metadata: { name?: string } }[]) => items.map((i) => i.metadata.name ?? '').filter((n) => n !== '').sort();

export function clusterNames(connection: ConnectionFlags): NameSource {
  let session: Session | undefined;
  const open = () => (session ??= new Session(connection));
  return {
    apiKeys: () => quietly(async () => namesOf((await open().list<ApiKey>(APIKEY_RESOURCE, open().apiKeyPath(), false)).items)),
    deployments: () => quietly(async () => namesOf((await open().list<Deployment>(DEPLOYMENT_RESOURCE, open().deploymentPath(), false)).items)),
    namespaces: () => quietly(async () => namesOf((await open().client.list<{ metadata: { name?: string } }>('/api/v1/namespaces')).items)),
    contexts: () => quietly(() => Promise.resolve(loadKubeConfig({ kubeconfig: connection.kubeconfig }).getContexts().map((c) => c.name).sort())),
  };
}
