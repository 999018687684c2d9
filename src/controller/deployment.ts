/**
 * Deployment reconcile: its status counts its ApiKeys and says whether its
 * spec can be used. Deleting a Deployment needs no finalizer: the ApiKeys'
 * ownerReferences let Kubernetes' garbage collector remove them, and their
 * Secrets with them.
 *
 * A custom audience (one in spec.audiences that is not one of the operator's
 * shared default audiences) belongs to one Deployment across all watched
 * namespaces: the one its AudienceClaim names (api/claims.ts). Reconciling a
 * Deployment claims each of its custom audiences that nobody holds (when it
 * is the next holder), so the first to list an audience holds it, whatever
 * its age. Any other Deployment that lists it is `Ready=False` with reason
 * `AudienceConflict`; the message names the audience, never the holder
 * (which may be in a namespace the reader cannot see). The token server
 * reads the same claims, so a namespace can never mint tokens for another
 * team's audience, and the holder is never disturbed by a later claimant.
 *
 * Every reason but Ready needs a person (another audience, a fixed spec, the
 * operator's --audiences): the status says `Stalled` with it too (conditions.ts).
 */
import { audienceClaimName, claimStands, customAudiences, holdsAudience, nextHolder } from '../api/claims.ts';
import type { AudienceClaim, Deployment } from '../api/index.ts';
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
  /** The AudienceClaim of `audience` in the operator's namespace, from the cache. */
  audienceClaim(audience: string): AudienceClaim | undefined;
  /** Creates the AudienceClaim of `audience` for `dep`: the claim, or undefined when one exists. */
  claimAudience(audience: string, dep: Deployment): Promise<AudienceClaim | undefined>;
  /** Asks for a claim whose holder no longer stands to be released (by the AudienceClaim controller). */
  releaseLater(claimName: string): void;
  applyStatus(dep: Deployment, status: DeploymentStatus): Promise<Deployment>;
  event(dep: Deployment, type: EventType, reason: string, action: string, note: string): void;
  defaultAudiences: string[];
}


/**
 * The custom audiences of `dep` it does not hold after claiming those that
 * nobody holds and that are its to claim (api/claims.ts nextHolder). A claim
 * whose holder no longer stands is handed to the AudienceClaim controller to
 * release; until then the audience stays with it.
 */
async function claimAudiences(deps: DeploymentDeps, dep: Deployment): Promise<string[]> {
  const notHeld: string[] = [];
  for (const aud of customAudiences(dep, deps.defaultAudiences)) {
    let claim = deps.audienceClaim(aud);
    if (!claim) {
      const next = nextHolder(deps.deploymentsWithAudience(aud));
      if (next?.metadata.uid === dep.metadata.uid) claim = await deps.claimAudience(aud, dep);
    } else if (!holdsAudience(claim, dep, aud)) {
      const h = claim.spec.holder;
      if (!claimStands(claim, deps.deployment(h.namespace, h.name))) deps.releaseLater(claim.metadata.name ?? audienceClaimName(aud));
    }
    if (!holdsAudience(claim, dep, aud)) notHeld.push(aud);
  }
  return notHeld;
}

export async function reconcileDeployment(deps: DeploymentDeps, namespace: string, name: string, now = new Date()): Promise<void> {
  const dep = deps.deployment(namespace, name);
  if (!dep || dep.metadata.deletionTimestamp) return;
  const audiences = dep.spec.audiences?.length ? dep.spec.audiences : deps.defaultAudiences;
  const ttlOk = parseDuration(dep.spec.maxTokenTTL ?? DEFAULT_TOKEN_TTL) !== undefined;
  const taken = await claimAudiences(deps, dep);
  const ready: ReadyState = audiences.length === 0
    ? { status: 'False', reason: Reason.NoAudiences, message: 'No spec.audiences and the operator has no default audiences (--audiences)' }
    : !ttlOk
      ? { status: 'False', reason: Reason.InvalidSpec, message: 'spec.maxTokenTTL is not a duration' }
      : taken.length
        ? { status: 'False', reason: Reason.AudienceConflict,
          message: `Audience ${taken.join(', ')} belongs to another Deployment, which claimed it first; no token is issued for it here`
            + ' until that Deployment lets go of it' }
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
