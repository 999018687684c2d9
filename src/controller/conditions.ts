/**
 * Conditions the cert-manager way: `lastTransitionTime` moves only when the
 * status flips, and each carries the generation it was computed from; and the
 * comparison that spares a status write when nothing changed.
 *
 * Every kind's status follows the kstatus conventions (sigs.k8s.io/cli-utils
 * pkg/kstatus, what Flux, kpt and cli-utils' appliers wait with; the Argo CD
 * health check manifests/argocd/health.lua reads the same), decided here in
 * one place from the Ready condition's reason (`REASON_CLASS`):
 *
 * - `Ready` as the contract fixes it (True, or False/Unknown with its reason);
 * - `Reconciling` True while the controller has work under way on the object
 *   (a key's first credentials being written), False otherwise;
 * - `Stalled` True when nothing will change without a person (an expired key,
 *   its Deployment gone, a conflict, a spec the controller cannot use), False
 *   otherwise; kstatus then says `Failed` with its message instead of waiting
 *   for a Ready that will not come;
 * - `status.observedGeneration` (and each condition's) the generation the
 *   status was computed from, so a spec change is `InProgress` until then;
 *   the CRDs default a status nobody wrote yet to `{observedGeneration: 0}`,
 *   so a new object is `InProgress` too, never `Current` before its first pass.
 *
 * Reconciling and Stalled are always written (False when they do not hold),
 * with the Ready condition's reason and message, as the kpt convention shows
 * them; they are never both True.
 */
import { metaTime } from '../kube/types.ts';
import type { Condition } from '../api/conditions.ts';
import type { ReadyReasonValue } from './reasons.ts';

export { getCondition, type Condition } from '../api/conditions.ts';

/** What a Ready reason tells a tool that waits: done, still working, or waiting for a person. */
export type ReasonClass = 'ready' | 'progressing' | 'stalled';

/** The class of every Ready reason (see reasons.ts). */
export const REASON_CLASS: Readonly<Record<ReadyReasonValue, ReasonClass>> = {
  SecretReady: 'ready',
  Ready: 'ready',
  Issuing: 'progressing',
  // A restored key waiting (a bounded time) for its Secret to be restored too.
  Restoring: 'progressing',
  // Stalled: each needs a person (create or restore the Deployment, rename or delete the Secret,
  // re-create the key, pick another audience, extend spec.expiresAt, fix the spec, allow the issuer,
  // rotate a key whose secret leaked).
  DeploymentNotFound: 'stalled',
  SecretConflict: 'stalled',
  KeyIdConflict: 'stalled',
  AudienceConflict: 'stalled',
  Expired: 'stalled',
  // A leaked secret (api/compromise.ts): its owner rotates the key.
  Compromised: 'stalled',
  NoAudiences: 'stalled',
  InvalidSpec: 'stalled',
  IssuerNotAllowed: 'stalled',
  InvalidExpression: 'stalled',
};

/** The Ready condition a reconcile decided on. */
export interface ReadyState {
  status: Condition['status'];
  reason: ReadyReasonValue;
  message: string;
}

/** The kstatus condition types. */
export const RECONCILING = 'Reconciling';
export const STALLED = 'Stalled';

/**
 * Sets Ready to `ready` and Reconciling and Stalled to what its reason's class
 * says, each with the generation it was computed from.
 */
export function setReadyConditions(existing: Condition[] | undefined, ready: ReadyState,
  observedGeneration: number | undefined, now: Date): Condition[] {
  const cls = REASON_CLASS[ready.reason];
  const derived = (type: string, holds: boolean) => ({
    type, status: holds ? 'True' as const : 'False' as const, reason: ready.reason, message: ready.message, observedGeneration,
  });
  let list = setCondition(existing, { type: 'Ready', ...ready, observedGeneration }, now);
  list = setCondition(list, derived(RECONCILING, cls === 'progressing'), now);
  return setCondition(list, derived(STALLED, cls === 'stalled'), now);
}

/** Sets one condition in place (a new type goes last), so the list's order stays put across passes. */
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
  return old ? list.map((c) => (c === old ? cond : c)) : [...list, cond];
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
