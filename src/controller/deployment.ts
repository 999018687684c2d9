/**
 * Deployment reconcile: its status counts its ApiKeys and says whether its
 * spec can be used. Deleting a Deployment needs no finalizer: the ApiKeys'
 * ownerReferences let Kubernetes' garbage collector remove them, and their
 * Secrets with them.
 */
import type { Deployment } from '../api/index.ts';
import { DEFAULT_TOKEN_TTL } from '../api/index.ts';
import { parseDuration } from '../shared/duration.ts';
import { sameStatus, setCondition, type Condition } from './conditions.ts';
import { Reason } from './reasons.ts';

export type DeploymentStatus = NonNullable<Deployment['status']>;

export interface DeploymentDeps {
  deployment(namespace: string, name: string): Deployment | undefined;
  apiKeyCount(namespace: string, deploymentName: string): number;
  applyStatus(dep: Deployment, status: DeploymentStatus): Promise<Deployment>;
  defaultAudiences: string[];
}

export async function reconcileDeployment(deps: DeploymentDeps, namespace: string, name: string, now = new Date()): Promise<void> {
  const dep = deps.deployment(namespace, name);
  if (!dep || dep.metadata.deletionTimestamp) return;
  const audiences = dep.spec.audiences?.length ? dep.spec.audiences : deps.defaultAudiences;
  const ttlOk = parseDuration(dep.spec.maxTokenTTL ?? DEFAULT_TOKEN_TTL) !== undefined;
  const ready: Omit<Condition, 'lastTransitionTime'> = audiences.length === 0
    ? { type: 'Ready', status: 'False', reason: Reason.NoAudiences, message: 'No spec.audiences and the operator has no default audiences (--audiences)', observedGeneration: dep.metadata.generation }
    : ttlOk
      ? { type: 'Ready', status: 'True', reason: Reason.DeploymentReady, message: `Keys may ask tokens for ${audiences.join(', ')}`, observedGeneration: dep.metadata.generation }
      : { type: 'Ready', status: 'False', reason: Reason.InvalidSpec, message: 'spec.maxTokenTTL is not a duration', observedGeneration: dep.metadata.generation };
  const status: DeploymentStatus = {
    observedGeneration: dep.metadata.generation,
    apiKeys: deps.apiKeyCount(namespace, name),
    conditions: setCondition(dep.status?.conditions, ready, now),
  };
  if (sameStatus(dep.status ?? {}, status)) return;
  await deps.applyStatus(dep, status);
}
