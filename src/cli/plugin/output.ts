/**
 * What the plugin prints: kubectl-style tables (upper-case headers, columns
 * padded with three spaces), kubectl's human durations for ages, and JSON or
 * YAML for `-o`. Objects are printed without managedFields, as kubectl does.
 */
import { stringify } from 'yaml';
import { PluginUsageError } from './errors.ts';

export type OutputFormat = 'table' | 'json' | 'yaml';

export function outputFormat(value: string | undefined, allowed: readonly OutputFormat[] = ['json', 'yaml']): OutputFormat {
  if (value === undefined) return 'table';
  if ((allowed as readonly string[]).includes(value) && value !== 'table') return value as OutputFormat;
  throw new PluginUsageError(`-o ${value} is not supported here; use ${allowed.map((a) => `-o ${a}`).join(' or ')}`);
}

/** JSON (2-space indent) or YAML of `value`, ending in a newline. */
export function formatStructured(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value, { lineWidth: 0 });
}

/** A kubectl-style table; an empty `rows` prints kubectl's "No resources found" line instead. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/**
 * A table of namespaced objects: one row each, with a leading NAMESPACE
 * column when they come from every namespace (-A), as kubectl prints them.
 */
export function formatObjectTable<T extends { metadata: { namespace?: string } }>(
  items: T[], headers: string[], row: (item: T) => string[], allNamespaces: boolean,
): string {
  return allNamespaces
    ? formatTable(['NAMESPACE', ...headers], items.map((i) => [i.metadata.namespace ?? '', ...row(i)]))
    : formatTable(headers, items.map(row));
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
