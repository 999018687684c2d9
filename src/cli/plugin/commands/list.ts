/**
 * `kubectl apikey list`: the keys of a namespace (or every namespace with
 * -A), as a table or as a List with -o json|yaml. It reads ApiKeys only,
 * never a Secret: nothing here shows a secret.
 */
import type { ApiKey } from '../../../api/index.ts';
import type { CommandDef, Invocation } from '../command.ts';
import { age, asList, formatObjectTable, formatStructured, withoutManagedFields } from '../output.ts';
import { APIKEY_RESOURCE, readyColumn } from '../resources.ts';

async function list(inv: Invocation): Promise<number> {
  const s = await inv.session();
  const path = s.apiKeyPath(undefined, inv.allNamespaces);
  const { items } = await s.list<ApiKey>(APIKEY_RESOURCE, path, inv.allNamespaces);
  items.sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  if (inv.output !== 'table') {
    process.stdout.write(formatStructured(asList(items.map(withoutManagedFields)), inv.output));
    return 0;
  }
  if (items.length === 0) {
    process.stderr.write(inv.allNamespaces ? 'No ApiKeys found.\n' : `No ApiKeys found in namespace ${s.namespace}.\n`);
    return 0;
  }
  const now = Date.now();
  const headers = ['NAME', 'DEPLOYMENT', 'KEY ID', 'PERMISSIONS', 'READY', 'LAST USED', 'AGE'];
  process.stdout.write(formatObjectTable(items, headers, (ak) => [
    ak.metadata.name ?? '',
    ak.spec.deploymentRef.name,
    ak.status?.keyId ?? '<pending>',
    (ak.spec.permissions ?? ['deploy']).join(','),
    readyColumn(ak),
    age(ak.status?.lastUsedAt, now, 'never'),
    age(ak.metadata.creationTimestamp, now),
  ], inv.allNamespaces));
  return 0;
}

export const listCommand: CommandDef = {
  name: 'list',
  summary: 'list API keys',
  description: 'List the API keys of a namespace (-A: of every namespace). Secrets are never shown.',
  usage: 'list [flags]',
  positionals: { min: 0, max: 0, names: [] },
  output: ['json', 'yaml'],
  allNamespaces: true,
  flags: [],
  examples: [
    '# The keys of the current namespace',
    'kubectl apikey list',
    '',
    '# Every key in the cluster, as YAML',
    'kubectl apikey list -A -o yaml',
  ],
  run: list,
};
