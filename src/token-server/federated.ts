/**
 * What the token server knows of a FederatedCredential, computed once per
 * watch event (its CEL expression compiled then, not per request), and the
 * rule that picks the credential an external token matches. Pure functions,
 * shared by the exchange, introspection and forward-auth.
 */
import type { FederatedCredential } from '../api/index.ts';
import { DEFAULT_FEDERATED_TOKEN_TTL, FEDERATED_CLIENT_PREFIX, MAX_TOKEN_TTL_SECONDS } from '../api/index.ts';
import { deploymentOwnerRef } from '../api/owner.ts';
import { compileClaimsExpression, type CelBudget, type ClaimsExpression } from '../federation/claims-expression.ts';
import { parseDuration } from '../shared/duration.ts';
import { NetworkList } from '../shared/networks.ts';
import { credentialFingerprint, type DeploymentEntry } from './keys.ts';

const DAY_MS = MAX_TOKEN_TTL_SECONDS * 1000;

export interface FederatedEntry {
  namespace: string;
  name: string;
  uid: string;
  /** `federated:<namespace>/<name>`: the client_id of its tokens. */
  clientId: string;
  /** `namespace/name` of spec.deploymentRef. */
  deployment: string;
  ownerUid: string | undefined;
  deleting: boolean;
  createdMs: number;
  issuer: string;
  /** spec.audience; undefined: the token server's own issuer URL. */
  audience: string | undefined;
  subject: string | undefined;
  /** The compiled spec.claims; undefined when there is none. An expression that does not compile matches nothing. */
  claims: ClaimsExpression | undefined;
  permissions: readonly string[];
  permissionSet: ReadonlySet<string>;
  scope: string;
  tokenTtlMs: number;
  /**
   * `cred_fp` of its tokens: a one-way mark of its uid and of everything in its spec that decides whom it
   * trusts and what it grants (issuer, audience, subject, claims, permissions), so a re-created credential
   * of the same name is another, and a credential whose trust changed no longer stands behind what it
   * issued before (federatedFingerprint).
   */
  fingerprint: string;
  lastUsedAtMs: number;
  /** spec.allowedNetworks, compiled; undefined: anywhere (shared/networks.ts). */
  networks?: NetworkList;
}

const time = (s: string | Date | undefined, none: number) => {
  if (!s) return none;
  const t = new Date(s).getTime();
  return Number.isNaN(t) ? none : t;
};

export function federatedEntry(fc: FederatedCredential): FederatedEntry {
  const namespace = fc.metadata.namespace ?? '';
  const name = fc.metadata.name ?? '';
  const uid = fc.metadata.uid ?? '';
  const permissions = fc.spec.permissions?.length ? [...new Set(fc.spec.permissions)] : ['deploy'];
  return {
    namespace,
    name,
    uid,
    clientId: `${FEDERATED_CLIENT_PREFIX}${namespace}/${name}`,
    deployment: `${namespace}/${fc.spec.deploymentRef.name}`,
    ownerUid: deploymentOwnerRef(fc)?.uid,
    deleting: !!fc.metadata.deletionTimestamp,
    createdMs: time(fc.metadata.creationTimestamp, Number.POSITIVE_INFINITY),
    issuer: fc.spec.issuer,
    audience: fc.spec.audience || undefined,
    subject: fc.spec.subject || undefined,
    claims: fc.spec.claims ? compileClaimsExpression(fc.spec.claims) : undefined,
    permissions,
    permissionSet: new Set(permissions),
    scope: permissions.join(' '),
    tokenTtlMs: Math.min(parseDuration(fc.spec.tokenTTL ?? DEFAULT_FEDERATED_TOKEN_TTL) ?? 3600_000, DAY_MS),
    fingerprint: federatedFingerprint(uid, fc.spec, permissions),
    lastUsedAtMs: time(fc.status?.lastUsedAt, 0),
    networks: NetworkList.compile(fc.spec.allowedNetworks),
  };
}

/**
 * The mark of a credential's identity and trust-relevant spec. Any change of issuer, audience, subject,
 * claims or the set of permissions changes it, so tokens issued under the old spec are no longer live at
 * introspection and /authz; a change of anything else (description, tokenTTL, labels) keeps it. The
 * fields are JSON-encoded as one array, so no two different specs give the same input.
 */
export function federatedFingerprint(uid: string, spec: FederatedCredential['spec'], permissions: readonly string[]): string {
  const trust = [spec.issuer, spec.audience || '', spec.subject || '', spec.claims || '', [...permissions].sort()];
  return credentialFingerprint(`federated ${uid} ${JSON.stringify(trust)}`);
}

/** Whether the credential can grant tokens of `dep` now: not being deleted, owned by this very Deployment. */
export function federatedCredentialStands(fc: FederatedEntry, dep: DeploymentEntry | undefined): dep is DeploymentEntry {
  return !fc.deleting && !!dep && !dep.deleting && fc.ownerUid === dep.uid && `${dep.namespace}/${dep.name}` === fc.deployment
    && (fc.claims === undefined || fc.claims.ok) && (fc.subject !== undefined || fc.claims !== undefined);
}

/**
 * Whether the verified external claims match the credential: audience,
 * subject, expression. The expression spends from `budget`, which one
 * request shares between every credential it tries (claims-expression.ts).
 */
export function federatedMatch(fc: FederatedEntry, claims: Readonly<Record<string, unknown>>, defaultAudience: string,
  budget: CelBudget): boolean {
  const want = fc.audience ?? defaultAudience;
  const aud = claims.aud;
  const audOk = typeof aud === 'string' ? aud === want : Array.isArray(aud) && aud.includes(want);
  if (!audOk) return false;
  if (fc.subject !== undefined && claims.sub !== fc.subject) return false;
  if (fc.claims !== undefined && !(fc.claims.ok && fc.claims.matches(claims, budget))) return false;
  return true;
}

/** Credentials in the order they are tried: first created first, then by uid (api/claims.ts's order). */
export function byCreation(a: FederatedEntry, b: FederatedEntry): number {
  return a.createdMs - b.createdMs || a.uid.localeCompare(b.uid);
}
