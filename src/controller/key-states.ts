/**
 * What the metrics say of ApiKeys, per Deployment: how many are in each
 * state, and the soonest expiry among those still alive. Labels are the
 * namespace and the Deployment only (never a key's name or id), so the number
 * of series grows with Deployments, not with keys.
 *
 * The states, decided in this order:
 *   - `expired`: spec.expiresAt has passed (whatever the status says yet);
 *   - `conflict`: Ready=False with SecretConflict or KeyIdConflict (a person must act);
 *   - `expiring`: Expiring=True (expiry.ts; within --expiry-warnings);
 *   - `ready`: Ready=True;
 *   - `not_ready`: everything else (being issued, Deployment gone).
 */
import type { ApiKey } from '../api/index.ts';
import { getCondition } from './conditions.ts';
import { EXPIRING } from './expiry.ts';
import { Reason } from './reasons.ts';

export const KEY_STATES = ['ready', 'expiring', 'expired', 'conflict', 'not_ready'] as const;
export type KeyState = (typeof KEY_STATES)[number];

const CONFLICTS: ReadonlySet<string> = new Set([Reason.SecretConflict, Reason.KeyIdConflict]);

export function keyState(ak: ApiKey, nowMs: number): KeyState {
  const expiresAt = ak.spec.expiresAt ? Date.parse(ak.spec.expiresAt) : NaN;
  if (expiresAt <= nowMs) return 'expired';
  const ready = getCondition(ak.status?.conditions, 'Ready');
  if (ready?.status === 'False' && CONFLICTS.has(ready.reason)) return 'conflict';
  if (getCondition(ak.status?.conditions, EXPIRING)?.status === 'True') return 'expiring';
  return ready?.status === 'True' ? 'ready' : 'not_ready';
}

export interface DeploymentKeys {
  namespace: string;
  deployment: string;
  counts: Record<KeyState, number>;
  /** The earliest spec.expiresAt (ms) among keys not yet expired; undefined when none expires. */
  soonestExpiryMs: number | undefined;
}

/** Keys grouped by (namespace, spec.deploymentRef.name); keys being deleted are left out. */
export function keysByDeployment(keys: Iterable<ApiKey>, nowMs: number): DeploymentKeys[] {
  const out = new Map<string, DeploymentKeys>();
  for (const ak of keys) {
    if (ak.metadata.deletionTimestamp) continue;
    const namespace = ak.metadata.namespace ?? '';
    const deployment = ak.spec.deploymentRef.name;
    const id = `${namespace}/${deployment}`;
    let d = out.get(id);
    if (!d) {
      d = { namespace, deployment, counts: { ready: 0, expiring: 0, expired: 0, conflict: 0, not_ready: 0 }, soonestExpiryMs: undefined };
      out.set(id, d);
    }
    const state = keyState(ak, nowMs);
    d.counts[state]++;
    const expiresAt = ak.spec.expiresAt ? Date.parse(ak.spec.expiresAt) : NaN;
    if (state !== 'expired' && !Number.isNaN(expiresAt) && (d.soonestExpiryMs === undefined || expiresAt < d.soonestExpiryMs)) {
      d.soonestExpiryMs = expiresAt;
    }
  }
  return [...out.values()];
}
