/**
 * How the list commands (list, deployments) print what they found, the way
 * kubectl get does: a table (-o wide: with more columns; --no-headers:
 * without its header line), resource/name lines (-o name), or a List as
 * JSON, YAML or through a JSONPath template.
 */
import type { Invocation } from './command.ts';
import { asList, formatNames, formatObjectTable, formatStructured, withoutManagedFields } from './output.ts';
import { data, text, textErr } from './terminal.ts';

export interface Columns<T> {
  headers: string[];
  row(item: T, now: number): string[];
  /** Columns -o wide adds after the default ones. */
  wideHeaders: string[];
  wideRow(item: T, now: number): string[];
}

interface Listed { metadata: { name?: string; namespace?: string } }

/** The items sorted by namespace and name, as kubectl lists them. */
export function sortByNamespaceAndName<T extends Listed>(items: T[]): T[] {
  return items.sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
}

/**
 * Prints `items` in the invocation's format. `resource` is kubectl's name of
 * their kind (apikey.apikeys.dev) for -o name; `empty` is the line for stderr
 * when a table would have no rows.
 */
export function printListing<T extends Listed & { metadata: { managedFields?: unknown } }>(
  inv: Invocation, items: T[], resource: string, columns: Columns<T>, empty: string,
): void {
  const format = inv.output;
  if (format === 'name') {
    data(formatNames(resource, items));
    return;
  }
  if (format !== 'table' && format !== 'wide') {
    data(formatStructured(asList(items.map(withoutManagedFields)), format));
    return;
  }
  if (items.length === 0) {
    textErr(`${empty}\n`);
    return;
  }
  const now = Date.now();
  const wide = format === 'wide';
  const headers = wide ? [...columns.headers, ...columns.wideHeaders] : columns.headers;
  const row = (item: T) => (wide ? [...columns.row(item, now), ...columns.wideRow(item, now)] : columns.row(item, now));
  text(formatObjectTable(items, headers, row, inv.allNamespaces, inv.values.headers !== false));
}
