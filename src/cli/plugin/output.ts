/**
 * What the plugin prints: kubectl-style tables (upper-case headers, columns
 * padded with three spaces), kubectl's human durations for ages, and for
 * `-o` JSON, YAML, kubectl's JSONPath templates, `name` (resource/name) and
 * `wide` (the table with more columns). Objects are printed without
 * managedFields, as kubectl does.
 */
import { stringify } from 'yaml';
import { PluginUsageError } from '../../client/errors.ts';
import { parseJsonPath, renderJsonPath } from './jsonpath.ts';
import { escapeTerminal } from './terminal.ts';

/** The value of -o; `jsonpath=TEMPLATE` carries its template. */
export type OutputFormat = 'table' | 'json' | 'yaml' | 'name' | 'wide' | `jsonpath=${string}`;
/** What a command may accept for -o: `jsonpath` stands for every `jsonpath=TEMPLATE`. */
export type OutputKind = 'json' | 'yaml' | 'name' | 'wide' | 'jsonpath';

export function outputFormat(value: string | undefined, allowed: readonly OutputKind[] = ['json', 'yaml']): OutputFormat {
  if (value === undefined) return 'table';
  if (value.startsWith('jsonpath=') && allowed.includes('jsonpath')) {
    const template = value.slice('jsonpath='.length);
    if (template === '') throw new PluginUsageError('-o jsonpath= needs a template, e.g. -o jsonpath=\'{.items[*].metadata.name}\'');
    parseJsonPath(template);
    return value as OutputFormat;
  }
  if ((allowed as readonly string[]).includes(value) && value !== 'jsonpath') return value as OutputFormat;
  const forms = allowed.map((a) => (a === 'jsonpath' ? '-o jsonpath=TEMPLATE' : `-o ${a}`));
  throw new PluginUsageError(`-o ${value} is not supported here; use ${forms.join(' or ')}`);
}

/** JSON (2-space indent), YAML or a JSONPath template of `value`, ending in a newline (the template: as written). */
export function formatStructured(value: unknown, format: OutputFormat): string {
  if (format === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  if (format === 'yaml') return stringify(value, { lineWidth: 0 });
  if (format.startsWith('jsonpath=')) return renderJsonPath(format.slice('jsonpath='.length), JSON.parse(JSON.stringify(value)));
  // Only a command that accepts -o name/wide gets them, and it prints them itself.
  throw new Error(`-o ${format} is not a structured format`);
}

/** `-o name`: kubectl's resource/name lines, e.g. apikey.apikeys.dev/ci. */
export function formatNames(resource: string, items: { metadata: { name?: string } }[]): string {
  return items.map((i) => `${resource}/${i.metadata.name ?? ''}\n`).join('');
}

/**
 * A kubectl-style table; without its header line for --no-headers (`headers`
 * still sets the widths' minimum). Every cell is escaped (terminal.ts): a
 * value from the cluster can neither drive the terminal nor start a line.
 */
export function formatTable(headers: string[], cells: string[][], showHeaders = true): string {
  const rows = cells.map((r) => r.map(escapeTerminal));
  const widths = headers.map((h, i) => Math.max(showHeaders ? h.length : 0, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd();
  return [...(showHeaders ? [line(headers)] : []), ...rows.map(line)].join('\n') + '\n';
}

/**
 * A table of namespaced objects: one row each, with a leading NAMESPACE
 * column when they come from every namespace (-A), as kubectl prints them.
 */
export function formatObjectTable<T extends { metadata: { namespace?: string } }>(
  items: T[], headers: string[], row: (item: T) => string[], allNamespaces: boolean, showHeaders = true,
): string {
  return allNamespaces
    ? formatTable(['NAMESPACE', ...headers], items.map((i) => [i.metadata.namespace ?? '', ...row(i)]), showHeaders)
    : formatTable(headers, items.map(row), showHeaders);
}

/**
 * kubectl's HumanDuration (k8s.io/apimachinery/pkg/util/duration): 45s,
 * 3m20s, 17m, 5h30m, 30h, 3d4h, 40d, 2y30d.
 */
export function humanDuration(ms: number): string {
  if (ms < -1000) return '<invalid>';
  if (ms < 0) return '0s';
  const s = Math.floor(ms / 1000);
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  if (s < 120) return `${s}s`;
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (h < 24 * 365 * 2) return `${d}d`;
  const y = Math.floor(d / 365);
  if (h < 24 * 365 * 8) return d % 365 === 0 ? `${y}y` : `${y}y${d % 365}d`;
  return `${y}y`;
}

/** How long ago `time` was, kubectl style; `fallback` when there is no time. */
export function age(time: string | Date | undefined, now = Date.now(), fallback = '<unknown>'): string {
  if (time === undefined) return fallback;
  const t = new Date(time).getTime();
  return Number.isNaN(t) ? fallback : humanDuration(now - t);
}

/** An absolute time with its distance from now: "2025-01-02T03:04:05Z (3h ago)" or "(in 20m)". */
export function timeAndDistance(time: string | undefined, now = Date.now(), fallback = '<none>'): string {
  if (!time) return fallback;
  const t = new Date(time).getTime();
  if (Number.isNaN(t)) return time;
  return t <= now ? `${time} (${humanDuration(now - t)} ago)` : `${time} (in ${humanDuration(t - now)})`;
}

/** A copy of a Kubernetes object without metadata.managedFields (kubectl's default output). */
export function withoutManagedFields<T extends { metadata?: object }>(obj: T): T {
  const copy = structuredClone(obj);
  if (copy.metadata) delete (copy.metadata as { managedFields?: unknown }).managedFields;
  return copy;
}

/** A kubectl-style List of objects. */
export function asList(items: unknown[]): { apiVersion: 'v1'; kind: 'List'; metadata: { resourceVersion: string }; items: unknown[] } {
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items };
}
