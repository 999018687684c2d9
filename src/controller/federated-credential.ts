/**
 * FederatedCredential reconcile: Deployment -> ownerReference -> status. The
 * token server decides every exchange itself from the same spec (its own
 * --federation-issuers, the same CEL compiler); this status tells the
 * credential's owner, ahead of any pipeline run, whether it can work:
 *
 * - `DeploymentNotFound`: no Deployment of spec.deploymentRef.name in the
 *   namespace (or the one it belonged to was deleted: it is being
 *   garbage-collected with it);
 * - `IssuerNotAllowed`: spec.issuer is neither in --federation-issuers nor a
 *   private issuer of --federation-issuer-jwks, so the token server never
 *   contacts it and never accepts its tokens;
 * - `InvalidExpression`: spec.claims does not compile; the message is the
 *   compiler's;
 * - else `Ready`.
 *
 * Each reason but Ready is one a person must act on: the status says
 * `Stalled` with it too (conditions.ts).
 *
 * `decideFederatedCredential` is pure (a table of cases in its test);
 * `reconcile` reads the caches, decides, and calls one write.
 */
import type { Deployment, FederatedCredential } from '../api/index.ts';
import { deploymentOwnerRef } from '../api/owner.ts';
import { compileClaimsExpression } from '../federation/claims-expression.ts';
import type { EventType } from '../kube/events.ts';
import { getCondition, sameStatus, setReadyConditions, type ReadyState } from './conditions.ts';
import { Reason } from './reasons.ts';

export type FederatedCredentialStatus = NonNullable<FederatedCredential['status']>;
type Ready = ReadyState;

export interface FederatedCredentialReads {
  federatedCredential(namespace: string, name: string): FederatedCredential | undefined;
  deployment(namespace: string, name: string): Deployment | undefined;
}

export interface FederatedCredentialWrites {
  setOwner(fc: FederatedCredential, deployment: Deployment): Promise<FederatedCredential>;
  applyStatus(fc: FederatedCredential, status: FederatedCredentialStatus): Promise<FederatedCredential>;
  event(fc: FederatedCredential, type: EventType, reason: string, action: string, note: string): void;
}

export interface FederatedCredentialConfig {
  /** --federation-issuers and the issuers of --federation-issuer-jwks. */
  allowedIssuers: ReadonlySet<string>;
}

/** The one thing a credential needs now. */
export type FederatedAction =
  | { kind: 'setOwner'; deployment: Deployment }
  | { kind: 'writeStatus'; ready: Ready };

/** Decides from the credential and its Deployment (undefined when there is none); pure. */
export function decideFederatedCredential(fc: FederatedCredential, dep: Deployment | undefined,
  cfg: FederatedCredentialConfig): FederatedAction {
  const depName = fc.spec.deploymentRef.name;
  const owner = deploymentOwnerRef(fc);
  if (owner && (!dep || dep.metadata.uid !== owner.uid)) {
    return { kind: 'writeStatus', ready: { status: 'False', reason: Reason.DeploymentNotFound,
      message: `Deployment ${depName} (uid ${owner.uid}) was deleted; this credential is being garbage-collected` } };
  }
  if (!dep) {
    return { kind: 'writeStatus', ready: { status: 'False', reason: Reason.DeploymentNotFound,
      message: `Deployment ${depName} (apikeys.dev) does not exist in namespace ${fc.metadata.namespace}` } };
  }
  if (!owner && dep.metadata.deletionTimestamp) {
    // As for ApiKeys: after an orphaning delete, adopting it again would have the credential deleted.
    return { kind: 'writeStatus', ready: { status: 'False', reason: Reason.DeploymentNotFound,
      message: `Deployment ${depName} is being deleted; this credential is not adopted by it` } };
  }
  if (!owner) return { kind: 'setOwner', deployment: dep };
  if (!cfg.allowedIssuers.has(fc.spec.issuer)) {
    return { kind: 'writeStatus', ready: { status: 'False', reason: Reason.IssuerNotAllowed,
      message: `Issuer ${fc.spec.issuer} is not one the cluster admin allows (--federation-issuers, --federation-issuer-jwks); the token server never contacts it` } };
  }
  if (fc.spec.claims) {
    const compiled = compileClaimsExpression(fc.spec.claims);
    if (!compiled.ok) {
      return { kind: 'writeStatus', ready: { status: 'False', reason: Reason.InvalidExpression, message: `spec.claims: ${compiled.error}` } };
    }
  }
  return { kind: 'writeStatus', ready: { status: 'True', reason: Reason.FederationReady,
    message: `Tokens of ${fc.spec.issuer} that match are exchanged for tokens of Deployment ${depName}` } };
}

export class FederatedCredentialReconciler {
  private readonly reads: FederatedCredentialReads;
  private readonly writes: FederatedCredentialWrites;
  private readonly cfg: FederatedCredentialConfig;
  private readonly clock: () => Date;

  constructor(reads: FederatedCredentialReads, writes: FederatedCredentialWrites, cfg: FederatedCredentialConfig,
    clock: () => Date = () => new Date()) {
    this.reads = reads;
    this.writes = writes;
    this.cfg = cfg;
    this.clock = clock;
  }

  async reconcile(namespace: string, name: string): Promise<void> {
    const fc = this.reads.federatedCredential(namespace, name);
    if (!fc || fc.metadata.deletionTimestamp) return;
    const dep = this.reads.deployment(namespace, fc.spec.deploymentRef.name);
    const action = decideFederatedCredential(fc, dep, this.cfg);
    // The ownerReference's own watch event brings the credential back for its status, from a fresh cache.
    if (action.kind === 'setOwner') await this.writes.setOwner(fc, action.deployment);
    else await this.writeStatus(fc, action.ready);
  }

  /** The status this controller owns (everything but lastUsedAt, which the token server writes), only when it changed. */
  private async writeStatus(fc: FederatedCredential, ready: Ready): Promise<void> {
    const { lastUsedAt: _ignored, ...owned } = fc.status ?? {};
    const status: FederatedCredentialStatus = {
      observedGeneration: fc.metadata.generation,
      conditions: setReadyConditions(fc.status?.conditions, ready, fc.metadata.generation, this.clock()),
    };
    if (sameStatus(status, owned)) return;
    const before = getCondition(fc.status?.conditions, 'Ready');
    const updated = await this.writes.applyStatus(fc, status);
    if (ready.status === 'False' && before?.reason !== ready.reason) this.writes.event(updated, 'Warning', ready.reason, 'Reconcile', ready.message);
  }
}
