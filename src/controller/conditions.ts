/**
 * Conditions the cert-manager way: `lastTransitionTime` moves only when the
 * status flips, and each carries the generation it was computed from; and the
 * comparison that spares a status write when nothing changed.
 */
import { metaTime } from '../kube/types.ts';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export function setCondition(
  existing: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: Date,
): Condition[] {
  const list = existing ?? [];
  const old = list.find((c) => c.type === next.type);
  const cond: Condition = {
    ...next,
    lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime : metaTime(now),
  };
  return [...list.filter((c) => c.type !== next.type), cond];
}

export function getCondition(list: Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** True when two statuses hold the same values, whatever their key order (undefined counts as absent). */
export function sameStatus(a: object, b: object): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => a.localeCompare(b))
      .map(([k, x]) => [k, sortKeys(x)]));
  }
  return v;
}
