/**
 * Backup and restore the way backup tools do it (Velero's defaults): the
 * objects of a namespace are saved as the apiserver has them, and restored
 * with their status, uid, resourceVersion, creationTimestamp, generation
 * and managedFields stripped, and their ownerReferences dropped (or, to try
 * what a tool that keeps them does, kept, naming uids that are gone).
 */
import { APIKEYS, DEPLOYMENTS, GROUP, MANAGED_BY, MANAGED_BY_LABEL, VERSION } from '../../src/api/index.ts';
import { paths, type KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/types.ts';
import { adminClient } from './resources.ts';
import { waitFor } from './wait.ts';

export type Kind = 'deployments' | 'apikeys' | 'secrets';

export interface Backup {
  namespace: string;
  objects: Record<Kind, KubeObject[]>;
}

const collection = (kind: Kind, ns: string) =>
  (kind === 'secrets' ? paths.collection('', 'v1', 'secrets', ns) : paths.collection(GROUP, VERSION, kind === 'apikeys' ? APIKEYS : DEPLOYMENTS, ns));

/** The Deployments, ApiKeys and credentials Secrets of a namespace, as the apiserver has them now. */
export async function backup(namespace: string, client: KubeClient = adminClient()): Promise<Backup> {
  const list = async (kind: Kind) => (await client.list<KubeObject>(collection(kind, namespace),
    kind === 'secrets' ? { labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` } : {})).items;
  return { namespace, objects: { deployments: await list('deployments'), apikeys: await list('apikeys'), secrets: await list('secrets') } };
}

/** Deletes every Deployment, ApiKey and credentials Secret of the namespace, and waits until they are gone. */
export async function wipe(namespace: string, client: KubeClient = adminClient()): Promise<void> {
  const now = await backup(namespace, client);
  for (const kind of ['deployments', 'apikeys', 'secrets'] as const) {
    for (const o of now.objects[kind]) {
      await client.delete(`${collection(kind, namespace)}/${o.metadata!.name!}`).catch((err: { status?: number }) => {
        if (err.status !== 404) throw err;
      });
    }
  }
  await waitFor(`namespace ${namespace} emptied`, async () => {
    const b = await backup(namespace, client);
    return Object.values(b.objects).every((l) => l.length === 0);
  }, 60_000, 100);
}

export interface RestoreOptions {
  /** The order of the kinds; Velero's default restores Secrets before custom resources. */
  order: Kind[];
  /** `drop`: Velero's default; `old`: kept as they were, naming the uids of objects that are gone. */
  ownerReferences?: 'drop' | 'old';
  /** Restore into this namespace instead (Velero's --namespace-mappings). */
  namespace?: string;
  /** Only objects for which this holds. */
  only?: (o: KubeObject, kind: Kind) => boolean;
  /** Runs between two kinds. */
  between?: () => Promise<void>;
  client?: KubeClient;
}

/** What a backup tool writes back: no status, uid, resourceVersion, timestamps, generation or managedFields. */
export function stripped(o: KubeObject, opts: Pick<RestoreOptions, 'ownerReferences' | 'namespace'> = {}): KubeObject {
  const {
    uid: _u, resourceVersion: _rv, creationTimestamp: _c, managedFields: _m, generation: _g, deletionTimestamp: _d,
    deletionGracePeriodSeconds: _dg, selfLink: _s, ownerReferences, ...meta
  } = o.metadata ?? {};
  const { status: _status, ...rest } = o as KubeObject & { status?: unknown };
  return {
    ...rest,
    metadata: {
      ...meta,
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
      ...(opts.ownerReferences === 'old' && ownerReferences ? { ownerReferences } : {}),
    },
  };
}

/** Restores a backup; objects that exist already are left as they are (Velero's default), and counted. */
export async function restore(b: Backup, opts: RestoreOptions): Promise<{ skipped: string[] }> {
  const client = opts.client ?? adminClient();
  const ns = opts.namespace ?? b.namespace;
  const skipped: string[] = [];
  for (const [i, kind] of opts.order.entries()) {
    if (i > 0) await opts.between?.();
    for (const o of b.objects[kind]) {
      if (opts.only && !opts.only(o, kind)) continue;
      try {
        await client.create(collection(kind, ns), stripped(o, opts));
      } catch (err) {
        if ((err as { status?: number }).status !== 409) throw err;
        skipped.push(`${kind}/${o.metadata?.name}`);
      }
    }
  }
  return { skipped };
}

/** The object of a backup by kind and name. */
export function inBackup<T extends KubeObject = KubeObject>(b: Backup, kind: Kind, name: string): T {
  const o = b.objects[kind].find((x) => x.metadata?.name === name);
  if (!o) throw new Error(`${kind}/${name} is not in the backup of ${b.namespace}`);
  return o as T;
}
