/**
 * Deployment reconcile: its status counts its ApiKeys and says whether its
 * spec can be used. Deleting a Deployment needs no finalizer: the ApiKeys'
 * ownerReferences let Kubernetes' garbage collector remove them, and their
 * Secrets with them.
 *
 * A custom audience (one in spec.audiences that is not one of the operator's
 * shared default audiences) belongs to one Deployment across all watched
 * namespaces: the first to claim it (api/claims.ts). Any other Deployment
 * that lists it is `Ready=False` with reason `AudienceConflict`; the message
 * names the audience, never the owner (which may be in a namespace the
 * reader cannot see). The token server applies the same rule, so a
 * namespace can never mint tokens for another team's audience.
 *
 * Every reason but Ready needs a person (another audience, a fixed spec, the
 * operator's --audiences): the status says `Stalled` with it too (conditions.ts).
 */
import { audiencesClaimedByOthers } from '../api/claims.ts';
import type { Deployment } from '../api/index.ts';
import { DEFAULT_TOKEN_TTL } from '../api/index.ts';
import type { EventType } from '../kube/events.ts';
import { parseDuration } from '../shared/duration.ts';
import { getCondition, sameStatus, setReadyConditions, type ReadyState } from './conditions.ts';
import { Reason } from './reasons.ts';

export type DeploymentStatus = NonNullable<Deployment['status']>;

export interface DeploymentDeps {
  deployment(namespace: string, name: string): Deployment | undefined;
  apiKeyCount(namespace: string, deploymentName: string): number;
  /** Every Deployment whose spec.audiences lists `audience`. */
  deploymentsWithAudience(audience: string): Deployment[];
  applyStatus(dep: Deployment, status: DeploymentStatus): Promise<Deployment>;
  event(dep: Deployment, type: EventType, reason: string, action: string, note: string): void;
  defaultAudiences: string[];
}



export async function reconcileDeployment(deps: DeploymentDeps, namespace: string, name: string, now = new Date()): Promise<void> {
  const dep = deps.deployment(namespace, name);
  if (!dep || dep.metadata.deletionTimestamp) return;
  const audiences = dep.spec.audiences?.length ? dep.spec.audiences : deps.defaultAudiences;
  const ttlOk = parseDuration(dep.spec.maxTokenTTL ?? DEFAULT_TOKEN_TTL) !== undefined;
  const taken = audiencesClaimedByOthers(dep, (aud) => deps.deploymentsWithAudience(aud), deps.defaultAudiences);
  const ready: ReadyState = audiences.length === 0
    ? { status: 'False', reason: Reason.NoAudiences, message: 'No spec.audiences and the operator has no default audiences (--audiences)' }
    : !ttlOk
      ? { status: 'False', reason: Reason.InvalidSpec, message: 'spec.maxTokenTTL is not a duration' }
      : taken.length
        ? { status: 'False', reason: Reason.AudienceConflict,
          message: `Audience ${taken.join(', ')} belongs to another Deployment, which claimed it first; no token is issued for it here` }
        : { status: 'True', reason: Reason.DeploymentReady, message: `Keys may ask tokens for ${audiences.join(', ')}` };
  const status: DeploymentStatus = {
    observedGeneration: dep.metadata.generation,
    apiKeys: deps.apiKeyCount(namespace, name),
    conditions: setReadyConditions(dep.status?.conditions, ready, dep.metadata.generation, now),
  };
  if (sameStatus(dep.status ?? {}, status)) return;
  const before = getCondition(dep.status?.conditions, 'Ready');
  const updated = await deps.applyStatus(dep, status);
  if (ready.status === 'False' && before?.reason !== ready.reason) deps.event(updated, 'Warning', ready.reason, 'Reconcile', ready.message);
}
