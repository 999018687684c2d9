/**
 * What the token server knows of an ApiKey and its Deployment, computed once
 * per watch event so that a request does two Map lookups, one SHA-256 and
 * one constant-time compare. The rules that refuse a key live here, as pure
 * functions of (key, Deployment, now), so they are the same for issuing a
 * token, introspecting it and forward-auth.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKey, Deployment } from '../api/index.ts';
import { DEFAULT_GRACE_PERIOD, MAX_TOKEN_TTL_SECONDS } from '../api/index.ts';
import { reportOn } from '../api/compromise.ts';
import { deploymentOwnerRef } from '../api/owner.ts';
import { hashDigest, isKeyId } from '../keys/format.ts';
import { parseDuration } from '../shared/duration.ts';
import { NetworkList } from '../shared/networks.ts';
import type { FailureReason } from './oauth-errors.ts';

const DAY_MS = MAX_TOKEN_TTL_SECONDS * 1000;

export interface KeyEntry {
  keyId: string;
  namespace: string;
  name: string;
  uid: string;
  /** `namespace/name` of spec.deploymentRef: the `deployment` claim and the Deployment lookup key. */
  deployment: string;
  /** uid in the ownerReference to the Deployment, when the controller has set it. */
  ownerUid: string | undefined;
  deleting: boolean;
  /**
   * The current secret was reported leaked (api/compromise.ts): by the apikeys.dev/compromised
   * annotation, from the moment this server sees it, or by status.compromise once the controller
   * recorded it. Nothing is issued, and no token of the key is live, until a rotation.
   */
  compromised: boolean;
  /** The hashes of every secret of this key that a report named (the annotation's, status.compromise's). */
  reportedHashes: readonly string[];
  /** The Ready condition is False (reason in `notReadyReason`). */
  notReady: boolean;
  notReadyReason: string;
  /** spec.expiresAt (or status.expiresAt, whichever is earlier), ms; Infinity when none. */
  expiresAtMs: number;
  permissions: readonly string[];
  permissionSet: ReadonlySet<string>;
  /** The permissions joined by spaces: the default `scope`. */
  scope: string;
  tokenTtlMs: number;
  /** status.secretHash and status.previousSecretHash as stored (`sha256:`...; '' when none), whatever the grace. */
  currentHash: string;
  previousHash: string;
  /** Raw SHA-256 of the current secret (decoded status.secretHash). */
  current: Buffer | undefined;
  currentFp: string;
  previous: Buffer | undefined;
  previousFp: string;
  previousValidUntilMs: number;
  lastUsedAtMs: number;
  /** spec.allowedNetworks, compiled; undefined: anywhere (shared/networks.ts). */
  networks?: NetworkList;
  /** spec.requireDPoP: its tokens must be DPoP-bound (with its Deployment's, dpop.ts). */
  requireDpop: boolean;
}

export interface DeploymentEntry {
  namespace: string;
  name: string;
  uid: string;
  deleting: boolean;
  /** spec.audiences; undefined or empty means the server's default audiences. */
  audiences: readonly string[] | undefined;
  /**
   * Custom audiences of spec.audiences that this Deployment does not hold: no
   * AudienceClaim names it (another Deployment holds them, or the controller
   * has not claimed them yet; api/claims.ts). No token is issued for them
   * here, and no token of this Deployment that names one is live.
   */
  audiencesNotHeld: ReadonlySet<string>;
  maxTokenTtlMs: number;
  /** spec.allowedNetworks, compiled: what its keys and FederatedCredentials are narrowed to; undefined: anywhere. */
  networks?: NetworkList;
  /** spec.requireDPoP: every token of the Deployment must be DPoP-bound. */
  requireDpop: boolean;
}

const time = (s: string | undefined, none: number) => {
  if (!s) return none;
  const t = Date.parse(s);
  return Number.isNaN(t) ? none : t;
};

/**
 * A short, one-way fingerprint of a secret hash, carried in tokens as
 * `cred_fp`, so that introspection can tell which secret a token was issued
 * with: a token of a secret that was rotated out (or replaced) is inactive
 * from the end of its grace period on, independent of clocks.
 */
export function credentialFingerprint(secretHash: string | undefined): string {
  if (!secretHash) return '';
  return createHash('sha256').update(`apikeys.dev/cred-fp\n${secretHash}`).digest('base64url').slice(0, 16);
}

/**
 * Until when the previous secret is accepted: status.previousSecretValidUntil, but never past the last
 * rotation (status.lastRotationTime, else the key's creation) plus the key's own spec.rotation.gracePeriod.
 * The controller writes both in one status write, so for its own writes the cap changes nothing; a status
 * written by anyone else (admission refuses it, but a cluster may run without the chart's policies)
 * cannot keep an old secret alive longer than the key's owner asked for.
 */
export function previousSecretGraceEnd(ak: ApiKey): number {
  const s = ak.status;
  const graceMs = parseDuration(ak.spec.rotation?.gracePeriod ?? DEFAULT_GRACE_PERIOD) ?? 0;
  const created = ak.metadata.creationTimestamp;
  const rotatedMs = s?.lastRotationTime ? time(s.lastRotationTime, Number.NaN) : created ? new Date(created).getTime() : Number.NaN;
  if (Number.isNaN(rotatedMs)) return 0;
  return Math.min(time(s?.previousSecretValidUntil, 0), rotatedMs + graceMs);
}

/** The entry of an ApiKey that has a key id, or undefined when the controller has not given it one yet. */
export function keyEntry(ak: ApiKey): KeyEntry | undefined {
  const s = ak.status;
  const keyId = s?.keyId;
  if (!isKeyId(keyId)) return undefined;
  const namespace = ak.metadata.namespace ?? '';
  const depName = ak.spec.deploymentRef.name;
  const permissions = ak.spec.permissions?.length ? [...new Set(ak.spec.permissions)] : ['deploy'];
  const ready = s?.conditions?.find((c) => c.type === 'Ready');
  const reported = [reportOn(ak.metadata.annotations)?.secretHash, s?.compromise?.secretHash].filter((h): h is string => !!h);
  // A report that names the previous secret ends its grace at once; the current one stands.
  const previous = s?.previousSecretHash && reported.includes(s.previousSecretHash) ? undefined : hashDigest(s?.previousSecretHash);
  return {
    keyId,
    namespace,
    name: ak.metadata.name ?? '',
    uid: ak.metadata.uid ?? '',
    deployment: `${namespace}/${depName}`,
    ownerUid: deploymentOwnerRef(ak)?.uid,
    deleting: !!ak.metadata.deletionTimestamp,
    compromised: !!s?.secretHash && reported.includes(s.secretHash),
    reportedHashes: reported,
    notReady: ready?.status === 'False',
    notReadyReason: ready?.status === 'False' ? ready.reason : '',
    expiresAtMs: Math.min(time(ak.spec.expiresAt, Infinity), time(s?.expiresAt, Infinity)),
    permissions,
    permissionSet: new Set(permissions),
    scope: permissions.join(' '),
    tokenTtlMs: Math.min(parseDuration(ak.spec.tokenTTL) ?? DAY_MS, DAY_MS),
    currentHash: s?.secretHash ?? '',
    previousHash: s?.previousSecretHash ?? '',
    current: hashDigest(s?.secretHash),
    currentFp: credentialFingerprint(s?.secretHash),
    previous,
    previousFp: previous ? credentialFingerprint(s?.previousSecretHash) : '',
    previousValidUntilMs: previous ? previousSecretGraceEnd(ak) : 0,
    lastUsedAtMs: time(s?.lastUsedAt, 0),
    networks: NetworkList.compile(ak.spec.allowedNetworks),
    requireDpop: ak.spec.requireDPoP === true,
  };
}

export function deploymentEntry(d: Deployment, audiencesNotHeld: readonly string[] = []): DeploymentEntry {
  return {
    namespace: d.metadata.namespace ?? '',
    name: d.metadata.name ?? '',
    uid: d.metadata.uid ?? '',
    deleting: !!d.metadata.deletionTimestamp,
    audiences: d.spec?.audiences?.length ? d.spec.audiences : undefined,
    audiencesNotHeld: new Set(audiencesNotHeld),
    maxTokenTtlMs: Math.min(parseDuration(d.spec?.maxTokenTTL) ?? DAY_MS, DAY_MS),
    networks: NetworkList.compile(d.spec?.allowedNetworks),
    requireDpop: d.spec?.requireDPoP === true,
  };
}

export interface Refusal {
  reason: FailureReason;
  /** Safe to show to a client that proved the secret: no secret, no hash. */
  message: string;
}

/**
 * Why a key may not be used at `nowMs`, or undefined when it may. Deleted
 * keys never get here (they are not in the cache); every other refusal of the
 * contract is checked against the request's clock and the current caches.
 */
export function keyRefusal(key: KeyEntry, dep: DeploymentEntry | undefined, nowMs: number): Refusal | undefined {
  if (key.deleting) return { reason: 'key_deleting', message: 'the API key is being deleted' };
  if (key.compromised) {
    return { reason: 'key_compromised', message: 'the API key\'s secret was reported leaked and is revoked; its owner must rotate the key' };
  }
  if (key.expiresAtMs <= nowMs) {
    return { reason: 'key_expired', message: `the API key expired at ${new Date(key.expiresAtMs).toISOString()}` };
  }
  if (!dep || dep.deleting) {
    return { reason: 'deployment_gone', message: `the API key's Deployment ${key.deployment} no longer exists` };
  }
  if (key.ownerUid !== dep.uid) {
    // No ownerReference yet, or one to a Deployment of the same name that was deleted and re-created.
    return { reason: 'owner_mismatch', message: `the API key does not belong to the current Deployment ${key.deployment}` };
  }
  if (key.notReady) return { reason: 'key_not_ready', message: `the API key is not Ready (${key.notReadyReason})` };
  return undefined;
}

export type SecretMatch = 'current' | 'previous';

/**
 * Which secret of the key a leak report's `secretHash` names: its current one, its previous one
 * (in grace or not), one a report named before (already revoked: a replay, or a secret rotated
 * away since), or none of them.
 */
export function reportedSecret(key: KeyEntry, secretHash: string): SecretMatch | 'reported' | undefined {
  if (key.currentHash === secretHash) return 'current';
  if (key.previousHash === secretHash) return 'previous';
  return key.reportedHashes.includes(secretHash) ? 'reported' : undefined;
}

/**
 * Which of the key's secrets `digest` (keys/format.ts secretDigest, computed
 * once for both hashes) is: the current one, or the previous one while its
 * grace period lasts. Constant-time compares (the same rule as
 * keys/format.ts secretMatchesHash, with the hashes decoded once per event).
 */
export function matchSecret(key: KeyEntry, digest: Buffer, nowMs: number): SecretMatch | undefined {
  if (key.current && timingSafeEqual(key.current, digest)) return 'current';
  if (key.previous && key.previousValidUntilMs > nowMs && timingSafeEqual(key.previous, digest)) return 'previous';
  return undefined;
}

/**
 * Token lifetime in whole seconds from `nowMs`: the key's tokenTTL, capped by
 * the Deployment's maxTokenTTL, by 24h, by the key's expiresAt and, for a
 * token issued with the previous secret, by the end of its grace period.
 * Zero or less means no token can be issued.
 */
export function tokenLifetimeSeconds(
  key: Pick<KeyEntry, 'tokenTtlMs' | 'expiresAtMs' | 'previousValidUntilMs'>,
  dep: Pick<DeploymentEntry, 'maxTokenTtlMs'>,
  match: SecretMatch,
  nowMs: number,
): number {
  const iat = Math.floor(nowMs / 1000);
  let exp = iat + Math.floor(Math.min(key.tokenTtlMs, dep.maxTokenTtlMs, DAY_MS) / 1000);
  if (key.expiresAtMs !== Infinity) exp = Math.min(exp, Math.floor(key.expiresAtMs / 1000));
  if (match === 'previous') exp = Math.min(exp, Math.floor(key.previousValidUntilMs / 1000));
  return exp - iat;
}
