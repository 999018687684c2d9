/**
 * `kubectl apikey deployments`: the Deployments (apikeys.dev) that keys can
 * be created for, with how many keys each has; the same output flags as list.
 */
import type { Deployment } from '../../../api/index.ts';
import { DEFAULT_TOKEN_TTL } from '../../../api/index.ts';
import { LIST_FLAGS, stringFlag, type CommandDef, type Invocation } from '../command.ts';
import { printListing, sortByNamespaceAndName, type Columns } from '../listing.ts';
import { age } from '../output.ts';
import { DEPLOYMENT_KIND_NAME, DEPLOYMENT_RESOURCE, readyColumn } from '../resources.ts';

export const DEPLOYMENT_COLUMNS: Columns<Deployment> = {
  headers: ['NAME', 'KEYS', 'MAX TTL', 'AUDIENCES', 'READY', 'AGE'],
  row: (d, now) => [
    d.metadata.name ?? '',
    String(d.status?.apiKeys ?? 0),
    d.spec.maxTokenTTL ?? DEFAULT_TOKEN_TTL,
    d.spec.audiences?.length ? d.spec.audiences.join(',') : '<default>',
    readyColumn(d),
    age(d.metadata.creationTimestamp, now),
  ],
  wideHeaders: ['DESCRIPTION'],
  wideRow: (d) => [d.spec.description ?? ''],
};

async function deployments(inv: Invocation): Promise<number> {
  const s = await inv.session();
  const path = s.deploymentPath(undefined, inv.allNamespaces);
  const { items } = await s.list<Deployment>(DEPLOYMENT_RESOURCE, path, inv.allNamespaces, stringFlag(inv.values, 'selector'));
  printListing(inv, sortByNamespaceAndName(items), DEPLOYMENT_KIND_NAME, DEPLOYMENT_COLUMNS,
    inv.allNamespaces ? 'No Deployments (apikeys.dev) found.' : `No Deployments (apikeys.dev) found in namespace ${s.namespace}.`);
  return 0;
}

export const deploymentsCommand: CommandDef = {
  name: 'deployments',
  summary: 'list the Deployments (apikeys.dev) and their key counts',
  description: 'List the Deployments (apikeys.dev) that API keys can be created for, with their number of keys.',
  usage: 'deployments [flags]',
  positionals: { min: 0, max: 0, names: [] },
  output: ['json', 'yaml', 'name', 'wide', 'jsonpath'],
  allNamespaces: true,
  flags: LIST_FLAGS,
  examples: [
    'kubectl apikey deployments',
    'kubectl apikey deployments -A -o json',
    'kubectl apikey deployments -o name',
  ],
  run: deployments,
};
