/**
 * `kubectl apikey list`: the keys of a namespace (or every namespace with
 * -A), as a table (-o wide: more columns), as names (-o name), or as a List
 * with -o json|yaml|jsonpath=...; -l narrows by labels as in kubectl get. It
 * reads ApiKeys only, never a Secret: nothing here shows a secret.
 *
 * EXPIRES is in the default table, since a key that dies unnoticed breaks a
 * pipeline: how long is left, marked `(soon)` once the controller says
 * Expiring=True. -o wide adds the exact time (EXPIRES AT).
 */
import type { ApiKey } from '../../../api/index.ts';
import { DEFAULT_GRACE_PERIOD, EXPIRING_CONDITION, reportedSecretNameOf } from '../../../api/index.ts';
import { LIST_FLAGS, stringFlag, type CommandDef, type Invocation } from '../command.ts';
import { printListing, sortByNamespaceAndName, type Columns } from '../listing.ts';
import { age, humanDuration } from '../output.ts';
import { APIKEY_RESOURCE, APIKEY_KIND_NAME, readyColumn } from '../resources.ts';

export const API_KEY_COLUMNS: Columns<ApiKey> = {
  headers: ['NAME', 'DEPLOYMENT', 'KEY ID', 'PERMISSIONS', 'READY', 'EXPIRES', 'LAST USED', 'AGE'],
  row: (ak, now) => [
    ak.metadata.name ?? '',
    ak.spec.deploymentRef.name,
    ak.status?.keyId ?? '<pending>',
    (ak.spec.permissions ?? ['deploy']).join(','),
    readyColumn(ak),
    expiresColumn(ak, now),
    age(ak.status?.lastUsedAt, now, 'never'),
    age(ak.metadata.creationTimestamp, now),
  ],
  wideHeaders: ['SECRET', 'EXPIRES AT', 'ROTATION', 'LAST ROTATION', 'NETWORKS', 'DESCRIPTION'],
  wideRow: (ak, now) => [
    reportedSecretNameOf(ak),
    ak.spec.expiresAt ?? '<never>',
    `${ak.spec.rotation?.every ? `every ${ak.spec.rotation.every}` : 'on request'}, grace ${ak.spec.rotation?.gracePeriod ?? DEFAULT_GRACE_PERIOD}`,
    ak.status?.lastRotationTime ? `${age(ak.status.lastRotationTime, now)} ago` : '<never>',
    ak.spec.allowedNetworks?.length ? ak.spec.allowedNetworks.join(',') : '<anywhere>',
    ak.spec.description ?? '',
  ],
};

/** `<never>`, `expired`, or the time left (`in 6d23h`), with `(soon)` while the key is Expiring=True. */
export function expiresColumn(ak: ApiKey, now: number): string {
  if (!ak.spec.expiresAt) return '<never>';
  const at = Date.parse(ak.spec.expiresAt);
  if (Number.isNaN(at)) return ak.spec.expiresAt;
  if (at <= now) return 'expired';
  const soon = ak.status?.conditions?.find((c) => c.type === EXPIRING_CONDITION)?.status === 'True';
  return `in ${humanDuration(at - now)}${soon ? ' (soon)' : ''}`;
}

async function list(inv: Invocation): Promise<number> {
  const s = await inv.session();
  const path = s.apiKeyPath(undefined, inv.allNamespaces);
  const { items } = await s.list<ApiKey>(APIKEY_RESOURCE, path, inv.allNamespaces, stringFlag(inv.values, 'selector'));
  printListing(inv, sortByNamespaceAndName(items), APIKEY_KIND_NAME, API_KEY_COLUMNS,
    inv.allNamespaces ? 'No ApiKeys found.' : `No ApiKeys found in namespace ${s.namespace}.`);
  return 0;
}

export const listCommand: CommandDef = {
  name: 'list',
  summary: 'list API keys',
  description: 'List the API keys of a namespace (-A: of every namespace). Secrets are never shown.',
  usage: 'list [flags]',
  positionals: { min: 0, max: 0, names: [] },
  output: ['json', 'yaml', 'name', 'wide', 'jsonpath'],
  allNamespaces: true,
  flags: LIST_FLAGS,
  examples: [
    '# The keys of the current namespace',
    'kubectl apikey list',
    '',
    '# Every key in the cluster, as YAML',
    'kubectl apikey list -A -o yaml',
    '',
    '# The names of the keys labelled team=ci, one per line, for a script',
    'kubectl apikey list -l team=ci -o jsonpath=\'{range .items[*]}{.metadata.name}{"\\n"}{end}\'',
  ],
  run: list,
};
