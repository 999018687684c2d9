/**
 * ApiKey reconcile: Deployment -> ownerReference -> credentials Secret ->
 * status, level-based and idempotent.
 *
 * The writes are ordered so that a crash between any two of them loses
 * nothing (ARCHITECTURE.md, invariants 1 and 2):
 *
 * - First creation writes the Secret *before* the status. A crash in between
 *   leaves a Secret we control and a status without a key id; the next pass
 *   adopts the Secret's id and secret instead of generating new ones.
 * - A rotation writes the status (new hash, old hash kept as previous with
 *   validUntil) *before* the Secret. Until the Secret write lands, the
 *   Secret's secret is the previous one and still verifies; a crash in
 *   between is recognised (the Secret holds the previous secret) and the
 *   rotation is completed with a fresh secret, the old one still in grace.
 * - A Secret deleted or altered by hand gets a new secret: status first,
 *   then the Secret, so that whatever the Secret holds verifies or is absent.
 *
 * Every status write carries the resourceVersion the decision was based on,
 * so a decision taken on a stale cache fails with 409 and is retried.
 */
import type { ApiKey, Deployment } from '../api/index.ts';
import { DEFAULT_GRACE_PERIOD, ROTATE_ANNOTATION, SECRET_KEYS } from '../api/index.ts';
import { deploymentOwnerRef } from '../api/owner.ts';
import { generateKeyId, generateSecret, hashSecret } from '../keys/format.ts';
import type { EventType } from '../kube/events.ts';
import { metaTime } from '../kube/types.ts';
import { parseDuration } from '../shared/duration.ts';
import { getCondition, sameStatus, setCondition, type Condition } from './conditions.ts';
import { Reason } from './reasons.ts';
import {
  credentialsSecret, isControlledBy, readCredential, secretNameOf, secretUpToDate, type SecretObject,
} from './secret.ts';

export type ApiKeyStatus = NonNullable<ApiKey['status']>;

/** What a reconcile may read. Production: informer caches with a GET fallback; tests: the apiserver. */
export interface ApiKeyReads {
  apiKey(namespace: string, name: string): ApiKey | undefined;
  deployment(namespace: string, name: string): Deployment | undefined;
  /** The Secret as cached (may be stale or, for foreign Secrets, absent). */
  cachedSecret(namespace: string, name: string): SecretObject | undefined;
  /** The Secret as the apiserver has it now. */
  liveSecret(namespace: string, name: string): Promise<SecretObject | undefined>;
}

/** Every write a reconcile makes. Each returns the object the apiserver answered with. */
export interface ApiKeyWrites {
  setOwner(ak: ApiKey, deployment: Deployment): Promise<ApiKey>;
  applyStatus(ak: ApiKey, status: ApiKeyStatus): Promise<ApiKey>;
  applySecret(secret: SecretObject): Promise<SecretObject>;
  event(ak: ApiKey, type: EventType, reason: string, action: string, note: string): void;
}

export interface ApiKeyConfig {
  tokenUrl: string;
  defaultAudiences: string[];
}

export interface ReconcileResult {
  /** Come back after this many ms (rotation, expiry, end of grace). */
  requeueAfterMs?: number;
}

function audienceOf(dep: Deployment, cfg: ApiKeyConfig): string {
  return dep.spec.audiences?.[0] ?? cfg.defaultAudiences[0] ?? '';
}

/** The status fields this controller owns (everything but lastUsedAt, which the token server writes). */
function ownedStatus(s: ApiKeyStatus | undefined): ApiKeyStatus {
  const { lastUsedAt: _ignored, ...rest } = s ?? {};
  return rest;
}

/** Ends the previous secret's grace period. */
function dropPreviousSecret(status: ApiKeyStatus): void {
  delete status.previousSecretHash;
  delete status.previousSecretValidUntil;
}

export class ApiKeyReconciler {
  private readonly reads: ApiKeyReads;
  private readonly writes: ApiKeyWrites;
  private readonly cfg: ApiKeyConfig;
  private readonly clock: () => Date;

  constructor(reads: ApiKeyReads, writes: ApiKeyWrites, cfg: ApiKeyConfig, clock: () => Date = () => new Date()) {
    this.reads = reads;
    this.writes = writes;
    this.cfg = cfg;
    this.clock = clock;
  }

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    let ak = this.reads.apiKey(namespace, name);
    if (!ak || ak.metadata.deletionTimestamp) return {};
    const now = this.clock();
    const depName = ak.spec.deploymentRef.name;
    const dep = this.reads.deployment(namespace, depName);
    const ref = deploymentOwnerRef(ak);

    // 1. The Deployment. A key whose owner is gone (or was replaced by a new
    //    Deployment of the same name) is never adopted: the GC deletes it.
    if (ref && (!dep || dep.metadata.uid !== ref.uid)) {
      await this.writeStatus(ak, ak.status, now, {
        status: 'False', reason: Reason.DeploymentNotFound,
        message: `Deployment ${depName} (uid ${ref.uid}) was deleted; this key is being garbage-collected`,
      });
      return {};
    }
    if (!dep) {
      await this.writeStatus(ak, ak.status, now, {
        status: 'False', reason: Reason.DeploymentNotFound,
        message: `Deployment ${depName} (apikeys.dev) does not exist in namespace ${namespace}`,
      });
      return {};
    }
    if (!ref) ak = await this.writes.setOwner(ak, dep);

    // 2. The Secret: ours, foreign, or absent.
    const secretName = secretNameOf(ak);
    let secret = this.reads.cachedSecret(namespace, secretName) ?? await this.reads.liveSecret(namespace, secretName);
    if (secret && !isControlledBy(secret, ak.metadata.uid)) {
      await this.writeStatus(ak, ak.status, now, {
        status: 'False', reason: Reason.SecretConflict,
        message: `Secret ${secretName} exists and is not controlled by this ApiKey; it was left untouched`,
      });
      return {};
    }

    const status: ApiKeyStatus = { ...ownedStatus(ak.status) };
    const annotation = ak.metadata.annotations?.[ROTATE_ANNOTATION];
    const expiresAtMs = ak.spec.expiresAt ? Date.parse(ak.spec.expiresAt) : undefined;
    const expired = expiresAtMs !== undefined && expiresAtMs <= now.getTime();
    const graceMs = parseDuration(ak.spec.rotation?.gracePeriod ?? DEFAULT_GRACE_PERIOD) ?? 3600_000;
    const audience = audienceOf(dep, this.cfg);
    const credentials = (keyId: string, value: string) =>
      credentialsSecret(ak!, { keyId, secret: value, tokenUrl: this.cfg.tokenUrl, audience });

    if (!secret) {
      if (status.keyId && status.secretHash) {
        // It existed (the status has its hash) and is gone: deleted by hand.
        const value = generateSecret();
        status.secretHash = hashSecret(value);
        dropPreviousSecret(status);
        status.lastRotationTime = metaTime(now);
        ak = await this.writeStatus(ak, status, now, this.readyCondition(expired));
        await this.writes.applySecret(credentials(status.keyId, value));
        this.writes.event(ak, 'Warning', Reason.SecretRecreated, 'RecreateSecret',
          `Secret ${secretName} was deleted; re-created it with a new secret for key ${status.keyId}`);
      } else {
        // First creation: the Secret first, so a crash leaves something to adopt.
        const keyId = status.keyId ?? generateKeyId();
        const value = generateSecret();
        await this.writes.applySecret(credentials(keyId, value));
        status.keyId = keyId;
        status.secretHash = hashSecret(value);
        if (annotation !== undefined) status.rotateAnnotation = annotation;
        ak = await this.writeStatus(ak, status, now, this.readyCondition(expired));
        this.createdEvent(ak, secretName, keyId);
      }
      return this.nextVisit(ak, now);
    }

    // 3. The Secret exists and is ours: make status and Secret agree.
    let keyId = readCredential(secret, SECRET_KEYS.id);
    let value = readCredential(secret, SECRET_KEYS.secret);
    if (!status.keyId || status.secretHash !== (value && hashSecret(value))) {
      // A mismatch is rare; decide on the live Secret, never on a stale cache.
      secret = (await this.reads.liveSecret(namespace, secretName)) ?? secret;
      keyId = readCredential(secret, SECRET_KEYS.id);
      value = readCredential(secret, SECRET_KEYS.secret);
    }
    const hash = value ? hashSecret(value) : undefined;
    if (!status.keyId && keyId && hash) {
      // Created by a pass that crashed before its status write: adopt it.
      status.keyId = keyId;
      status.secretHash = hash;
      if (annotation !== undefined) status.rotateAnnotation = annotation;
      ak = await this.writeStatus(ak, status, now, this.readyCondition(expired));
      this.createdEvent(ak, secretName, keyId);
    } else if (!status.keyId || hash !== status.secretHash) {
      const interrupted = hash !== undefined && hash === status.previousSecretHash;
      const fresh = generateSecret();
      status.keyId ??= generateKeyId();
      status.secretHash = hashSecret(fresh);
      status.lastRotationTime = metaTime(now);
      if (!interrupted) {
        dropPreviousSecret(status);
      }
      ak = await this.writeStatus(ak, status, now, this.readyCondition(expired));
      await this.writes.applySecret(credentials(status.keyId, fresh));
      if (!interrupted) {
        this.writes.event(ak, 'Warning', Reason.SecretModified, 'RecreateSecret',
          `Secret ${secretName} did not hold this key's secret (changed by hand?); wrote a new secret for key ${status.keyId}`);
      }
    } else {
      // 4. Rotation, by annotation or by schedule.
      const requested = annotation !== undefined && annotation !== status.rotateAnnotation;
      const everyMs = parseDuration(ak.spec.rotation?.every);
      const since = Date.parse(status.lastRotationTime ?? ak.metadata.creationTimestamp as unknown as string);
      const scheduled = everyMs !== undefined && !Number.isNaN(since) && since + everyMs <= now.getTime();
      if ((requested || scheduled) && !expired) {
        const fresh = generateSecret();
        status.previousSecretHash = status.secretHash;
        status.previousSecretValidUntil = metaTime(new Date(now.getTime() + graceMs));
        status.secretHash = hashSecret(fresh);
        status.lastRotationTime = metaTime(now);
        if (annotation !== undefined) status.rotateAnnotation = annotation;
        ak = await this.writeStatus(ak, status, now, this.readyCondition(expired));
        await this.writes.applySecret(credentials(status.keyId, fresh));
        this.writes.event(ak, 'Normal', Reason.Rotated, 'RotateSecret',
          `Rotated the secret of key ${status.keyId} (${requested ? `annotation ${ROTATE_ANNOTATION}` : 'schedule'}); ` +
          `the previous secret is accepted until ${status.previousSecretValidUntil}`);
      } else {
        // 5. Steady state: fix drift in the Secret, end a finished grace period.
        const desired = credentials(status.keyId, value!);
        if (!secretUpToDate(secret, desired)) await this.writes.applySecret(desired);
        if (status.previousSecretValidUntil && Date.parse(status.previousSecretValidUntil) <= now.getTime()) {
          dropPreviousSecret(status);
        }
        if (annotation !== undefined && expired) status.rotateAnnotation = annotation;
        ak = await this.writeStatus(ak, status, now, this.readyCondition(expired));
      }
    }
    return this.nextVisit(ak, now);
  }

  private createdEvent(ak: ApiKey, secretName: string, keyId: string): void {
    this.writes.event(ak, 'Normal', Reason.Created, 'CreateSecret', `Created Secret ${secretName} with key id ${keyId}`);
  }

  private readyCondition(expired: boolean): Omit<Condition, 'lastTransitionTime'> {
    return expired
      ? { type: 'Ready', status: 'False', reason: Reason.Expired, message: 'The key passed spec.expiresAt and issues no tokens' }
      : { type: 'Ready', status: 'True', reason: Reason.Ready, message: 'The credentials Secret is up to date' };
  }

  /**
   * Writes the status when it differs from what is stored; emits an event
   * when the Ready condition's reason changes into a failure.
   */
  private async writeStatus(
    ak: ApiKey, base: ApiKeyStatus | undefined, now: Date, ready: Pick<Condition, 'status' | 'reason' | 'message'>,
  ): Promise<ApiKey> {
    const status: ApiKeyStatus = { ...ownedStatus(base) };
    status.observedGeneration = ak.metadata.generation;
    status.secretName = secretNameOf(ak);
    if (ak.spec.expiresAt) status.expiresAt = ak.spec.expiresAt; else delete status.expiresAt;
    const before = getCondition(ak.status?.conditions, 'Ready');
    status.conditions = setCondition(ak.status?.conditions, {
      type: 'Ready', status: ready.status, reason: ready.reason, message: ready.message,
      observedGeneration: ak.metadata.generation,
    }, now);
    if (sameStatus(status, ownedStatus(ak.status))) return ak;
    const updated = await this.writes.applyStatus(ak, status);
    if (before?.reason !== ready.reason && ready.status === 'False') {
      this.writes.event(updated, 'Warning', ready.reason, 'Reconcile', ready.message);
    }
    return updated;
  }

  private nextVisit(ak: ApiKey, now: Date): ReconcileResult {
    const times: number[] = [];
    const s = ak.status ?? {};
    if (s.previousSecretValidUntil) times.push(Date.parse(s.previousSecretValidUntil));
    if (ak.spec.expiresAt) times.push(Date.parse(ak.spec.expiresAt));
    const everyMs = parseDuration(ak.spec.rotation?.every);
    if (everyMs !== undefined) {
      times.push(Date.parse(s.lastRotationTime ?? (ak.metadata.creationTimestamp as unknown as string)) + everyMs);
    }
    const future = times.filter((t) => !Number.isNaN(t)).map((t) => t - now.getTime()).filter((d) => d > 0);
    return future.length ? { requeueAfterMs: Math.min(...future) + 50 } : {};
  }
}

