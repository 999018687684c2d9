/**
 * `kubectl apikey deployments`: the Deployments (apikeys.dev) that keys can
 * be created for, with how many keys each has.
 */
import type { Deployment } from '../../../api/index.ts';
import { DEFAULT_TOKEN_TTL } from '../../../api/index.ts';
import type { CommandDef, Invocation } from '../command.ts';
import { age, asList, formatObjectTable, formatStructured, withoutManagedFields } from '../output.ts';
import { DEPLOYMENT_RESOURCE, readyColumn } from '../resources.ts';

async function deployments(inv: Invocation): Promise<number> {
  const s = await inv.session();
  const path = s.deploymentPath(undefined, inv.allNamespaces);
  const { items } = await s.list<Deployment>(DEPLOYMENT_RESOURCE, path, inv.allNamespaces);
  items.sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  if (inv.output !== 'table') {
    process.stdout.write(formatStructured(asList(items.map(withoutManagedFields)), inv.output));
    return 0;
  }
  if (items.length === 0) {
    process.stderr.write(inv.allNamespaces
      ? 'No Deployments (apikeys.dev) found.\n'
      : `No Deployments (apikeys.dev) found in namespace ${s.namespace}.\n`);
    return 0;
  }
  const now = Date.now();
  const headers = ['NAME', 'KEYS', 'MAX TTL', 'AUDIENCES', 'READY', 'AGE'];
  process.stdout.write(formatObjectTable(items, headers, (d) => [
    d.metadata.name ?? '',
    String(d.status?.apiKeys ?? 0),
    d.spec.maxTokenTTL ?? DEFAULT_TOKEN_TTL,
    d.spec.audiences?.length ? d.spec.audiences.join(',') : '<default>',
    readyColumn(d),
    age(d.metadata.creationTimestamp, now),
  ], inv.allNamespaces));
  return 0;
}

export const deploymentsCommand: CommandDef = {
  name: 'deployments',
  summary: 'list the Deployments (apikeys.dev) and their key counts',
  description: 'List the Deployments (apikeys.dev) that API keys can be created for, with their number of keys.',
  usage: 'deployments [flags]',
  positionals: { min: 0, max: 0, names: [] },
  output: ['json', 'yaml'],
  allNamespaces: true,
  flags: [],
  examples: [
    'kubectl apikey deployments',
    'kubectl apikey deployments -A -o json',
  ],
  run: deployments,
};
