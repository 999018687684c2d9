/**
 * ApiKey reconcile: Deployment -> ownerReference -> credentials Secret ->
 * status, level-based and idempotent. `reconcile` looks at the key, decides
 * what it needs (`decideAction`) and calls one named action for it, the way
 * cert-manager's issuing controller calls `issueCertificate`.
 *
 * Invariants this module keeps (test/crash-safety.test.ts, test/controller.test.ts
 * and src/controller/apikey.test.ts pin them down):
 *
 * 1. The secret in the credentials Secret verifies at the token server (it
 *    hashes to `status.secretHash`) whenever the status names a hash, except
 *    in the moment between a rotation's status write and its Secret write,
 *    when the Secret still holds the previous secret and both old and new
 *    are accepted. A new key's first Secret exists for a moment before any
 *    status names its hash (below); no Ready key vouches for it then.
 * 2. A crash at any point (between any two writes) leaves, after the next
 *    pass, exactly one Secret per ApiKey, consistent with its status, and no
 *    secret that ever verified changed without a rotation. (A Secret whose
 *    secret never verified, left by a crash between a new key's Secret
 *    create and its status write, is taken as it is when its seal proves the
 *    controller wrote it for this key, key id and secret (invariant 5), and
 *    replaced, with a Warning event, otherwise.)
 *
 * 3. A Secret is taken as this key's only when its secret hashes to the
 *    key's own `status.secretHash` (or to the previous hash, in grace), or,
 *    for a key whose status names no key id, when it is the key's own sealed
 *    Secret from before a restore (invariant 5). Being controlled by the
 *    ApiKey proves nothing: anyone who may create Secrets in the namespace
 *    can set that ownerReference, and key ids are public, so a Secret planted
 *    before the key's first pass could otherwise make the key adopt another
 *    key's id. Anything else gets new credentials.
 *
 * 4. A key id belongs to one ApiKey: if two ever claim the same id (a
 *    restored backup, a status written by hand), the first claimant
 *    (api/claims.ts) keeps it and the other is `Ready=False` with reason
 *    `KeyIdConflict`; the token server, deciding with the same rule, never
 *    refuses the first because of the second.
 *
 * 5. A restore from a backup keeps every key's id and secret, and gives
 *    nobody a key id or secret that was not theirs. A backup tool restores
 *    objects without status, with new uids, and with ownerReferences dropped
 *    (Velero's default); so two things the controller writes outside the
 *    status carry a key across: the key-id annotation on the ApiKey
 *    (`apikeys.dev/key-id`, set in the ownerReference patch of a new key:
 *    no extra request) and the seal on its Secret (`apikeys.dev/seal`, an
 *    HMAC under the operator's seal key over namespace, ApiKey name, key id
 *    and secret hash, set in the Secret's create or apply: seal.ts). A key
 *    whose status names no key id takes a Secret as its own only when the
 *    seal verifies for its namespace and name and for the key id and secret
 *    the Secret holds, that key id is the one its annotation names, the
 *    Secret is controlled by no other object (none, or an earlier incarnation
 *    of the same ApiKey), and no other ApiKey claims the id. That is as strong
 *    as invariant 3: only this controller can seal, and a seal made for one
 *    (namespace, name, key id, secret) verifies for nothing else, so a
 *    planted Secret, a sealed Secret copied under another name or into
 *    another namespace, or a seal moved onto another secret is never taken
 *    (it is handled as in invariant 3); the secret taken is the very one the
 *    key had, which is no new power for whoever can read the Secret; and
 *    since exactly one ApiKey (its namespace and name) can take a given
 *    sealed Secret, and none takes an id another ApiKey claims, invariant 4
 *    holds unchanged. A restored key (the annotation, no status, no
 *    ownerReference) first says Ready=Unknown (Restoring) and waits, a
 *    bounded time (RESTORE_WAIT_MS), for its Secret, which a backup tool may
 *    restore after it; the status is written first so that a pass stopped
 *    anywhere later still waits. Past the wait it gets new credentials, as a
 *    new key, under a new key id (the annotation is never a source of key
 *    ids: a tenant can write it). What a restore does not bring back: the
 *    previous secret of a rotation in grace (the Secret holds only the
 *    current one), and the time of the last rotation (a schedule counts from
 *    the restore). A Ready key whose Secret is not sealed with the newest
 *    seal key, or whose annotation is missing (keys made before seals), gets
 *    both on its next pass.
 *
 * So every new secret of a key that already has one (rotation, a Secret
 * deleted or altered by hand) writes the status first (key id, new hash; on
 * rotation the old hash kept as previous with validUntil), then the Secret.
 * Until the Secret write lands, the Secret holds the previous secret, which
 * still verifies, or nothing. A crash in between is recognised on the next
 * pass: a Secret holding the previous secret completes the rotation with a
 * fresh secret (the old one still in grace); a missing Secret is written
 * with a fresh secret (the one the crashed pass generated was never
 * readable anywhere).
 *
 * A new key (no key id in its status, no Secret seen) is the one exception,
 * and the common case: its Secret is created first, then one status write
 * names its key id and hash and says Ready=True. Four requests per new key:
 * the ownerReference patch (which also writes the key-id annotation), the
 * Secret's create (sealed), the status, the event (a
 * status-first sequence needs a fifth, Ready=Unknown (Issuing) before the
 * Secret and Ready=True after it, since Ready must never come before the
 * Secret). It is as safe, for three reasons:
 *
 * - The create is refused when any Secret of that name exists, so it
 *   overwrites nothing: a foreign Secret, ours from an earlier pass, or the
 *   Secret of a pass that decided on a stale cache all answer AlreadyExists.
 *   Only then is the Secret read: foreign, SecretConflict; ours, replaced on
 *   the status-first path, whose first write carries the resourceVersion, so
 *   a stale decision fails there (409) before it touches the Secret.
 * - Ready=True still means the Secret is there: the status that says so is
 *   the write after the Secret's create.
 * - A crash between the two leaves a Secret whose secret verifies nowhere
 *   (no status names it, the key is not Ready). The next pass reads it live
 *   (the key carries the key-id annotation and no status) and, its seal
 *   proving it the controller's own for this key, names it in one status
 *   write, as the interrupted pass would have; a Secret planted with the
 *   key's ownerReference, or edited since, has no valid seal and is replaced
 *   on the status-first path with a Warning (invariant 3).
 *
 * The status stays a server-side apply though a JSON merge patch with a
 * resourceVersion precondition costs the apiserver less: the apply's field
 * ownership is what removes a status field this controller no longer sets,
 * and one status written by both operations would leave fields that a later
 * apply cannot remove (the trap secret.ts works around for the create).
 *
 * Every status write carries the resourceVersion the decision was based on,
 * so a decision taken on a stale cache fails with 409 and is retried.
 *
 * A key that never had credentials is decided on the caches alone: the
 * secrets cache holds only the operator's Secrets, so it cannot see a
 * foreign Secret of the same name, but the Secret write that follows is then
 * a create, which the apiserver refuses (AlreadyExists) when any Secret of
 * that name exists; only then is the live Secret read and the key decided
 * again (foreign: SecretConflict, the status as it was; ours: replaced, as
 * invariant 3 wants). So a new key costs no GET. Every other key with no
 * cached Secret is checked live first, since a hash in its status may be
 * vouching for a Secret the cache has not seen yet.
 */
import type { ApiKey, Deployment, SecretObject } from '../api/index.ts';
import {
  credentialsSecret, DEFAULT_GRACE_PERIOD, KEY_ID_ANNOTATION, readCredential, ROTATE_ANNOTATION, SEAL_ANNOTATION, SECRET_KEYS, secretNameOf,
} from '../api/index.ts';
import { firstClaimant } from '../api/claims.ts';
import { describeReport, reportOn } from '../api/compromise.ts';
import { deploymentOwnerRef } from '../api/owner.ts';
import { generateKeyId, generateSecret, hashSecret } from '../keys/format.ts';
import { isAlreadyExists, KubeError } from '../kube/client.ts';
import type { ProcessResult } from '../kube/controller.ts';
import type { EventType } from '../kube/events.ts';
import { metaTime } from '../kube/types.ts';
import { parseDuration } from '../shared/duration.ts';
import { getCondition, sameStatus, setCondition, setReadyConditions, type ReadyState } from './conditions.ts';
import { DEFAULT_EXPIRY_WARNINGS, EXPIRING, expiringCondition, nextThreshold, parseExpiryWarnings } from './expiry.ts';
import { Reason } from './reasons.ts';
import type { Sealer } from './seal.ts';
import { createdMetadataLeft, isControlledBy, secretUpToDate } from './secret.ts';

export type ApiKeyStatus = NonNullable<ApiKey['status']>;

/** What a reconcile may read. Production: informer caches with a GET fallback; tests: the apiserver. */
export interface ApiKeyReads {
  apiKey(namespace: string, name: string): ApiKey | undefined;
  deployment(namespace: string, name: string): Deployment | undefined;
  /** Every ApiKey whose status claims `keyId` (normally one). */
  apiKeysWithKeyId(keyId: string): ApiKey[];
  /** The Secret as cached (may be stale or, for foreign Secrets, absent). */
  cachedSecret(namespace: string, name: string): SecretObject | undefined;
  /** The Secret as the apiserver has it now. */
  liveSecret(namespace: string, name: string): Promise<SecretObject | undefined>;
}

/** Every write a reconcile makes. Each returns the object the apiserver answered with. */
export interface ApiKeyWrites {
  /** Sets the ownerReference to the Deployment and, with `keyId`, the key-id annotation in the same patch. */
  setOwner(ak: ApiKey, deployment: Deployment, keyId?: string): Promise<ApiKey>;
  /** Sets the key-id annotation (KEY_ID_ANNOTATION) to the key id the status names. */
  setKeyIdAnnotation(ak: ApiKey, keyId: string): Promise<ApiKey>;
  /** Makes a restored Secret this key's: its controller reference names the key's uid (invariant 5). */
  adoptSecret(secret: SecretObject, ak: ApiKey): Promise<SecretObject>;
  applyStatus(ak: ApiKey, status: ApiKeyStatus): Promise<ApiKey>;
  applySecret(secret: SecretObject): Promise<SecretObject>;
  /** Creates the Secret; fails with AlreadyExists when a Secret of that name exists, whoever it belongs to. */
  createSecret(secret: SecretObject): Promise<SecretObject>;
  /** Removes labels and annotations from the Secret (ones its create set, which an apply cannot remove). */
  removeSecretMetadata(secret: SecretObject, keys: { labels: string[]; annotations: string[] }): Promise<SecretObject>;
  event(ak: ApiKey, type: EventType, reason: string, action: string, note: string): void;
}

export interface ApiKeyConfig {
  tokenUrl: string;
  defaultAudiences: string[];
  /** --expiry-warnings in ms, largest first (expiry.ts); default 30, 7 and 1 days. */
  expiryWarningsMs?: readonly number[];
  /** The seal keys (seal.ts). */
  seals: { get(): Promise<Sealer> };
  /** How long a restored key waits for its Secret to be restored too; default RESTORE_WAIT_MS. */
  restoreWaitMs?: number;
}

/** How long a restored key waits for its Secret (a backup tool restores a namespace in seconds to minutes). */
export const RESTORE_WAIT_MS = 10 * 60_000;

const DEFAULT_EXPIRY_WARNINGS_MS = parseExpiryWarnings(DEFAULT_EXPIRY_WARNINGS);

/** Come back after `requeueAfterMs` (rotation, expiry, end of grace). */
export type ReconcileResult = ProcessResult;

/** The status fields this controller owns (everything but lastUsedAt, which the token server writes). */
function ownedStatus(s: ApiKeyStatus | undefined): ApiKeyStatus {
  const { lastUsedAt: _ignored, ...rest } = s ?? {};
  return rest;
}

/** A Secret of the key's name that the key does not control turned up at the Secret's create. */
class SecretTaken extends Error {
  /** The key as the apiserver last answered (after this pass's status write). */
  readonly ak: ApiKey;
  constructor(ak: ApiKey) {
    super('the credentials Secret is taken by a Secret this key does not control');
    this.ak = ak;
  }
}

/** Ends the previous secret's grace period. */
function dropPreviousSecret(status: ApiKeyStatus): void {
  delete status.previousSecretHash;
  delete status.previousSecretValidUntil;
}

/**
 * A leak report from the apikeys.dev/compromised annotation (api/compromise.ts), taken into the
 * status: one that names the current secret becomes status.compromise (the first report of that
 * secret stays; the same report again changes nothing); one that names the previous secret ends
 * its grace at once. A report of any other secret (one rotated away since) changes nothing.
 */
function acceptReport(status: ApiKeyStatus, report: ReturnType<typeof reportOn>): void {
  if (!report) return;
  if (report.secretHash === status.secretHash && status.compromise?.secretHash !== report.secretHash) status.compromise = report;
  if (report.secretHash === status.previousSecretHash) dropPreviousSecret(status);
}

/** The current secret was reported leaked: the key is Ready=False (Compromised) until a new secret. */
function compromised(status: ApiKeyStatus): boolean {
  return !!status.secretHash && status.compromise?.secretHash === status.secretHash;
}


/** What a pass saw of a key whose Deployment exists and whose Secret, if any, is ours. */
export interface KeyState {
  ak: ApiKey;
  dep: Deployment;
  now: Date;
  secretName: string;
  /** The Secret (re-read live when it disagrees with the status), or undefined when there is none. */
  secret: SecretObject | undefined;
  /** What the Secret holds; `hash` is the hash of its secret. */
  stored: { keyId?: string; value?: string; hash?: string };
  /** A copy of the status fields this controller owns, for the action to change. */
  status: ApiKeyStatus;
  /** The value of the rotate annotation, if any. */
  annotation: string | undefined;
  expired: boolean;
  sealer: Sealer;
  /** The key id this pass generated and wrote into the key-id annotation, for a new key's credentials. */
  newKeyId?: string;
  /** The Secret is this key's own from before a restore (invariant 5), to be taken back. */
  adoptable?: boolean;
}

/** The one thing a key needs now; each is a method of ApiKeyReconciler. */
export type Action =
  | 'adoptSecret' | 'createCredentials' | 'replaceDeletedSecret' | 'replaceModifiedSecret' | 'completeRotation' | 'rotate' | 'convergeStatus';

/** Decides what a key needs, from what a pass saw; pure. */
export function decideAction(st: KeyState): Action {
  const { status, stored } = st;
  if (!status.keyId && st.adoptable) return 'adoptSecret';
  if (!status.keyId || !status.secretHash) return 'createCredentials';
  if (!st.secret) return issuing(st.ak) ? 'createCredentials' : 'replaceDeletedSecret';
  if (stored.hash !== status.secretHash) {
    // The Secret holds the previous secret: a rotation's status write landed, its Secret write did not.
    return stored.hash !== undefined && stored.hash === status.previousSecretHash ? 'completeRotation' : 'replaceModifiedSecret';
  }
  return rotationRequested(st) || rotationScheduled(st) ? 'rotate' : 'convergeStatus';
}

function rotationRequested(st: KeyState): boolean {
  return !st.expired && st.annotation !== undefined && st.annotation !== st.status.rotateAnnotation;
}

function rotationScheduled(st: KeyState): boolean {
  const everyMs = parseDuration(st.ak.spec.rotation?.every);
  const since = Date.parse(st.status.lastRotationTime ?? st.ak.metadata.creationTimestamp as unknown as string);
  return !st.expired && everyMs !== undefined && !Number.isNaN(since) && since + everyMs <= st.now.getTime();
}

type Ready = ReadyState;

/** Between a first creation's status write and its Secret write. */
const ISSUING: Ready = { status: 'Unknown', reason: Reason.Issuing, message: 'Writing the credentials Secret' };

/** True while the key's first credentials are being written (the pass that began it may have stopped). */
function issuing(ak: ApiKey): boolean {
  return getCondition(ak.status?.conditions, 'Ready')?.reason === Reason.Issuing;
}

/** A restored key (no status, a key id issued before) waits for its Secret. */
function restoringCondition(ak: ApiKey): Ready {
  return { status: 'Unknown', reason: Reason.Restoring,
    message: `Restored without status: waiting for Secret ${secretNameOf(ak)} with key id ${keyIdAnnotationOf(ak)} to be restored too` };
}

function keyIdAnnotationOf(ak: ApiKey): string | undefined {
  return ak.metadata.annotations?.[KEY_ID_ANNOTATION];
}

/** A key id was issued to this object (it survived a restore) but its status names none. */
function restoredWithoutStatus(ak: ApiKey): boolean {
  return !ak.status?.keyId && keyIdAnnotationOf(ak) !== undefined;
}

function readyCondition(st: KeyState): Ready {
  const c = st.status.compromise;
  if (c && compromised(st.status)) {
    const { namespace, name } = st.ak.metadata;
    return {
      status: 'False', reason: Reason.Compromised,
      message: `The secret was ${describeReport(c)}; the key issues no tokens and every token it issued is inactive. ` +
        `Rotate it to recover: kubectl apikey rotate ${name} -n ${namespace}`,
    };
  }
  return st.expired
    ? { status: 'False', reason: Reason.Expired, message: 'The key passed spec.expiresAt and issues no tokens' }
    : { status: 'True', reason: Reason.Ready, message: 'The credentials Secret is up to date' };
}

export class ApiKeyReconciler {
  private readonly reads: ApiKeyReads;
  private readonly writes: ApiKeyWrites;
  private readonly cfg: ApiKeyConfig;
  private readonly clock: () => Date;
  private readonly warningsMs: readonly number[];

  constructor(reads: ApiKeyReads, writes: ApiKeyWrites, cfg: ApiKeyConfig, clock: () => Date = () => new Date()) {
    this.reads = reads;
    this.writes = writes;
    this.cfg = cfg;
    this.clock = clock;
    this.warningsMs = cfg.expiryWarningsMs ?? DEFAULT_EXPIRY_WARNINGS_MS;
  }

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    let ak = this.reads.apiKey(namespace, name);
    if (!ak || ak.metadata.deletionTimestamp) return {};
    const now = this.clock();
    const dep = this.reads.deployment(namespace, ak.spec.deploymentRef.name);
    const missing = deploymentMissing(ak, dep);
    if (missing) {
      await this.writeStatus(ak, ak.status, now, missing);
      return {};
    }
    const sealer = await this.cfg.seals.get();
    let newKeyId: string | undefined;
    if (!deploymentOwnerRef(ak)) {
      if (restoredWithoutStatus(ak) && getCondition(ak.status?.conditions, 'Ready')?.reason !== Reason.Restoring) {
        // Said first, so that a pass stopped anywhere later still waits for the Secret.
        ak = await this.writeStatus(ak, ak.status, now, restoringCondition(ak));
      }
      // A new key's id goes onto the object with its ownerReference, in one patch: it survives a restore.
      if (!ak.status?.keyId && !restoredWithoutStatus(ak)) newKeyId = generateKeyId();
      ak = await this.writes.setOwner(ak, dep!, newKeyId);
    }
    if (this.keyIdTakenByAnother(ak)) {
      await this.writeStatus(ak, ak.status, now, {
        status: 'False', reason: Reason.KeyIdConflict,
        message: `Another ApiKey claimed key id ${ak.status!.keyId} first; this key issues no tokens. Delete and re-create it for a new key id`,
      });
      return {};
    }
    const st = await this.observe(ak, dep!, now, sealer, newKeyId);
    if (!st) {
      await this.secretConflict(ak, ak.status, now);
      return {};
    }
    const waitMs = this.restoreWaitLeft(st);
    if (waitMs !== undefined) return { requeueAfterMs: waitMs };
    try {
      return this.nextVisit(await this[decideAction(st)](st), now);
    } catch (err) {
      if (!(err instanceof SecretTaken)) throw err;
      // Back to the status this pass began with: the secret it generated was never stored anywhere.
      await this.secretConflict(err.ak, ak.status, now);
      return {};
    }
  }

  private secretConflict(ak: ApiKey, base: ApiKeyStatus | undefined, now: Date): Promise<ApiKey> {
    return this.writeStatus(ak, base, now, {
      status: 'False', reason: Reason.SecretConflict,
      message: `Secret ${secretNameOf(ak)} exists and is not controlled by this ApiKey; it was left untouched`,
    });
  }

  /**
   * How long a restored key whose Secret is not there yet goes on waiting
   * for it (undefined: it does not wait). Past the wait, it gets new
   * credentials like a new key, with a Warning.
   */
  private restoreWaitLeft(st: KeyState): number | undefined {
    const ready = getCondition(st.ak.status?.conditions, 'Ready');
    if (st.secret || st.status.keyId || ready?.reason !== Reason.Restoring) return undefined;
    const since = Date.parse(ready.lastTransitionTime);
    const left = (Number.isNaN(since) ? 0 : since + (this.cfg.restoreWaitMs ?? RESTORE_WAIT_MS)) - st.now.getTime();
    if (left > 0) return left + 50;
    this.writes.event(st.ak, 'Warning', Reason.NotRestored, 'CreateSecret',
      `Secret ${st.secretName} was not restored within ${Math.round((this.cfg.restoreWaitMs ?? RESTORE_WAIT_MS) / 1000)}s; ` +
      `issuing new credentials (key id ${keyIdAnnotationOf(st.ak)} is not reused)`);
    return undefined;
  }

  /**
   * Whether `secret` is this key's own Secret from before a restore
   * (invariant 5): its seal verifies for this namespace, this ApiKey's name,
   * the key id in both the Secret and the key-id annotation, and the secret
   * it holds; it is controlled by no other object (none, or an earlier
   * incarnation of this ApiKey, or this one); it is not being deleted; and no
   * other ApiKey claims its key id.
   */
  private adoptable(ak: ApiKey, secret: SecretObject, sealer: Sealer): boolean {
    const issued = keyIdAnnotationOf(ak);
    if (ak.status?.keyId || !issued || secret.metadata?.deletionTimestamp) return false;
    const controller = secret.metadata?.ownerReferences?.find((r) => r.controller);
    if (controller && !(controller.kind === 'ApiKey' && controller.name === ak.metadata.name)) return false;
    const { keyId, hash } = storedCredentials(secret);
    if (keyId !== issued || hash === undefined) return false;
    const sealed = sealer.verify(secret.metadata?.annotations?.[SEAL_ANNOTATION],
      { namespace: ak.metadata.namespace!, name: ak.metadata.name!, keyId, secretHash: hash });
    return sealed && this.reads.apiKeysWithKeyId(keyId).every((o) => o.metadata.uid === ak.metadata.uid);
  }

  /** True when an earlier ApiKey claims this key's id (invariant 4): it keeps it, this one stands down. */
  private keyIdTakenByAnother(ak: ApiKey): boolean {
    const keyId = ak.status?.keyId;
    if (!keyId) return false;
    const first = firstClaimant(this.reads.apiKeysWithKeyId(keyId));
    return !!first && first.metadata.uid !== ak.metadata.uid;
  }

  /**
   * Reads the key's Secret; undefined when a Secret of that name exists and
   * is not ours. A key that never had credentials (and is not known to
   * conflict) is decided on the cache alone: its Secret write is a create.
   */
  private async observe(ak: ApiKey, dep: Deployment, now: Date, sealer: Sealer, newKeyId: string | undefined): Promise<KeyState | undefined> {
    const { namespace } = ak.metadata;
    const secretName = secretNameOf(ak);
    // A restored key's Secret may be there, not cached yet: it is read live.
    const fresh = !ak.status?.keyId && getCondition(ak.status?.conditions, 'Ready')?.reason !== Reason.SecretConflict
      && (newKeyId !== undefined || !restoredWithoutStatus(ak));
    let secret = this.reads.cachedSecret(namespace!, secretName)
      ?? (fresh ? undefined : await this.reads.liveSecret(namespace!, secretName));
    const expiresAtMs = ak.spec.expiresAt ? Date.parse(ak.spec.expiresAt) : undefined;
    const base = {
      ak, dep, now, secretName, sealer, newKeyId,
      annotation: ak.metadata.annotations?.[ROTATE_ANNOTATION],
      expired: expiresAtMs !== undefined && expiresAtMs <= now.getTime(),
    };
    if (secret && restoredWithoutStatus(ak) && newKeyId === undefined) {
      // Decided on the live Secret: a restore may have just replaced what the cache holds.
      secret = (await this.reads.liveSecret(namespace!, secretName)) ?? secret;
      if (this.adoptable(ak, secret, sealer)) {
        return { ...base, secret, stored: storedCredentials(secret), status: { ...ownedStatus(ak.status) }, adoptable: true };
      }
    }
    if (secret && !isControlledBy(secret, ak.metadata.uid)) return undefined;
    const status: ApiKeyStatus = { ...ownedStatus(ak.status) };
    acceptReport(status, reportOn(ak.metadata.annotations));
    let stored = secret ? storedCredentials(secret) : {};
    if (secret && (!status.keyId || status.secretHash !== stored.hash)) {
      // A mismatch is rare; decide on the live Secret, never on a stale cache.
      secret = (await this.reads.liveSecret(namespace!, secretName)) ?? secret;
      stored = storedCredentials(secret);
    }
    return { ...base, secret, stored, status };
  }

  /**
   * A restored key takes back its own Secret (invariant 5): the Secret's
   * controller reference names this key, then one status write names the
   * Secret's key id and hash and says Ready. Nothing else of the old status
   * comes back: the previous secret of a rotation in grace is not in the
   * Secret, and the rotate annotation's value is taken as seen, so the
   * restore rotates nothing.
   */
  async adoptSecret(st: KeyState): Promise<ApiKey> {
    const { status, stored } = st;
    if (!isControlledBy(st.secret!, st.ak.metadata.uid)) await this.writes.adoptSecret(st.secret!, st.ak);
    status.keyId = stored.keyId!;
    status.secretHash = stored.hash!;
    dropPreviousSecret(status);
    if (st.annotation !== undefined) status.rotateAnnotation = st.annotation;
    const ak = await this.writeStatus(st.ak, status, st.now, readyCondition(st));
    this.writes.event(ak, 'Normal', Reason.Restored, 'AdoptSecret',
      `Took back Secret ${st.secretName}, sealed by this operator for this key, with key id ${status.keyId}`);
    return ak;
  }

  /**
   * First creation. A key that names no key id yet and whose Secret the
   * pass did not see takes the short path: the Secret's create, then one
   * status write that vouches for it and says Ready (`createFirstSecret`).
   * Anything else (a Secret of ours already there, which proves nothing by
   * invariant 3, or a status that names a key id: a creation interrupted by
   * an earlier version between its status and Secret writes) takes the
   * guarded path: the status first, with Ready=Unknown (Issuing) and the new
   * hash, then the Secret, then Ready.
   */
  async createCredentials(st: KeyState): Promise<ApiKey> {
    const claimed = st.status.keyId !== undefined;
    st.status.keyId ??= st.newKeyId ?? generateKeyId();
    if (st.annotation !== undefined) st.status.rotateAnnotation = st.annotation;
    let ak = st.ak;
    if (claimed || st.secret || !(await this.createFirstSecretOrSay(st))) ak = await this.writeNewSecret(st, { issuing: true });
    ak = await this.writeStatus(ak, st.status, st.now, readyCondition(st));
    if (st.secret) {
      this.writes.event(ak, 'Warning', Reason.SecretModified, 'RecreateSecret',
        `Secret ${st.secretName} held credentials that no status vouched for (made by hand, or left by an interrupted creation); ` +
        `replaced them with new credentials for key ${st.status.keyId}`);
    } else {
      this.writes.event(ak, 'Normal', Reason.Created, 'CreateSecret', `Created Secret ${st.secretName} with key id ${st.status.keyId}`);
    }
    return ak;
  }

  /**
   * `createFirstSecret`, and when the apiserver refuses the create (a
   * ResourceQuota, a webhook), a status that says so (Issuing, the status
   * otherwise as it was, naming no key id) before the pass fails and is
   * retried. Only the HTTP status and reason: a webhook's message may echo
   * the Secret.
   */
  private async createFirstSecretOrSay(st: KeyState): Promise<boolean> {
    try {
      return await this.createFirstSecret(st);
    } catch (err) {
      if (!(err instanceof KubeError)) throw err;
      await this.writeStatus(st.ak, st.ak.status, st.now, { status: 'Unknown', reason: Reason.Issuing,
        message: `The apiserver refused to create Secret ${st.secretName} (${err.status} ${err.reason}); retrying` });
      throw err;
    }
  }

  /**
   * A new key's Secret, created before any status names its secret; true
   * when created. The create is refused when any Secret of that name exists,
   * so it never overwrites anything: a stale pass, one whose earlier try
   * landed, or a foreign Secret all find AlreadyExists here. A foreign
   * Secret ends the pass (SecretTaken); one of ours is replaced on the
   * guarded path (false), whose first write, the status, carries the
   * resourceVersion, so a stale pass stops there before touching the Secret.
   */
  private async createFirstSecret(st: KeyState): Promise<boolean> {
    const value = generateSecret();
    try {
      await this.writes.createSecret(this.credentials(st, st.status.keyId!, value));
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const live = await this.reads.liveSecret(st.ak.metadata.namespace!, st.secretName);
      if (live && !isControlledBy(live, st.ak.metadata.uid)) throw new SecretTaken(st.ak);
      st.secret = live;
      return false;
    }
    st.status.secretHash = hashSecret(value);
    return true;
  }

  /**
   * The status has a hash and there is no Secret: deleted by hand, or the
   * pass that created the key stopped before its Secret write. A new
   * secret, same key id.
   */
  async replaceDeletedSecret(st: KeyState): Promise<ApiKey> {
    dropPreviousSecret(st.status);
    const ak = await this.writeNewSecret(st);
    this.writes.event(ak, 'Warning', Reason.SecretRecreated, 'RecreateSecret',
      `Secret ${st.secretName} did not exist; wrote it with a new secret for key ${st.status.keyId}`);
    return ak;
  }

  /**
   * The Secret does not hold this key's secret (edited by hand, or planted):
   * a new secret under the status's key id, the old one void at once.
   */
  async replaceModifiedSecret(st: KeyState): Promise<ApiKey> {
    dropPreviousSecret(st.status);
    const ak = await this.writeNewSecret(st);
    this.writes.event(ak, 'Warning', Reason.SecretModified, 'RecreateSecret',
      `Secret ${st.secretName} did not hold this key's secret (changed by hand?); wrote a new secret for key ${st.status.keyId}`);
    return ak;
  }

  /** A rotation interrupted between its status and Secret writes: finish it, the previous secret still in grace. */
  async completeRotation(st: KeyState): Promise<ApiKey> {
    return this.writeNewSecret(st);
  }

  /** Rotation by annotation or schedule: the current secret becomes the previous one, valid for the grace period. */
  async rotate(st: KeyState): Promise<ApiKey> {
    const { status } = st;
    const requested = rotationRequested(st);
    // A leaked secret gets no grace: it is void from the rotation on, as it was since the report.
    const leaked = compromised(status);
    if (leaked) {
      dropPreviousSecret(status);
    } else {
      const graceMs = parseDuration(st.ak.spec.rotation?.gracePeriod ?? DEFAULT_GRACE_PERIOD) ?? 3600_000;
      status.previousSecretHash = status.secretHash;
      status.previousSecretValidUntil = metaTime(new Date(st.now.getTime() + graceMs));
    }
    if (st.annotation !== undefined) status.rotateAnnotation = st.annotation;
    const ak = await this.writeNewSecret(st);
    this.writes.event(ak, 'Normal', Reason.Rotated, 'RotateSecret',
      `Rotated the secret of key ${status.keyId} (${requested ? `annotation ${ROTATE_ANNOTATION}` : 'schedule'}); ` +
      (leaked ? 'the leaked secret stays revoked and the key issues tokens again' : `the previous secret is accepted until ${status.previousSecretValidUntil}`));
    return ak;
  }

  /** Steady state: fix drift in the Secret's other fields, end a finished grace period, refresh the status. */
  async convergeStatus(st: KeyState): Promise<ApiKey> {
    const { status } = st;
    // A key made before the annotation existed, or whose id was not the one its owner patch named.
    let ak = st.ak;
    if (keyIdAnnotationOf(ak) !== status.keyId) ak = await this.writes.setKeyIdAnnotation(ak, status.keyId!);
    const desired = this.credentials(st, status.keyId!, st.stored.value!);
    if (!secretUpToDate(st.secret!, desired)) {
      await this.writes.applySecret(desired);
      const left = createdMetadataLeft(st.secret!, desired);
      if (left) await this.writes.removeSecretMetadata(desired, left);
    }
    if (status.previousSecretValidUntil && Date.parse(status.previousSecretValidUntil) <= st.now.getTime()) {
      dropPreviousSecret(status);
    }
    // An expired key is not rotated; the annotation is recorded as seen, so un-expiring it does not rotate.
    if (st.annotation !== undefined && st.expired) status.rotateAnnotation = st.annotation;
    return this.writeStatus(ak, status, st.now, readyCondition(st));
  }

  /**
   * The "new secret" sequence every action shares: generate, hash, write the
   * status, then the Secret (invariant 1). A first secret is no rotation.
   */
  private async writeNewSecret(st: KeyState, opts: { issuing?: boolean } = {}): Promise<ApiKey> {
    const { status } = st;
    const value = generateSecret();
    status.secretHash = hashSecret(value);
    if (!opts.issuing) status.lastRotationTime = metaTime(st.now);
    const ak = await this.writeStatus(st.ak, status, st.now, opts.issuing ? ISSUING : readyCondition(st));
    const desired = this.credentials(st, status.keyId!, value);
    if (st.secret) {
      await this.writes.applySecret(desired);
      return ak;
    }
    try {
      await this.writes.createSecret(desired);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      // A Secret the pass did not see: a foreign one (never cached), or ours not yet cached. Decide on it live.
      const live = await this.reads.liveSecret(st.ak.metadata.namespace!, st.secretName);
      if (live && !isControlledBy(live, st.ak.metadata.uid)) throw new SecretTaken(ak);
      // Ours, yet not vouched for by the status this pass began with (invariant 3): replaced.
      st.secret = live;
      await this.writes.applySecret(desired);
    }
    return ak;
  }

  /** The Secret as it should be, sealed (invariant 5): the seal goes into the same write as the secret. */
  private credentials(st: KeyState, keyId: string, secret: string): SecretObject {
    const audience = st.dep.spec.audiences?.[0] ?? this.cfg.defaultAudiences[0] ?? '';
    const desired = credentialsSecret(st.ak, { keyId, secret, tokenUrl: this.cfg.tokenUrl, audience });
    desired.metadata.annotations = { ...desired.metadata.annotations, [SEAL_ANNOTATION]: st.sealer.seal({
      namespace: st.ak.metadata.namespace!, name: st.ak.metadata.name!, keyId, secretHash: hashSecret(secret),
    }) };
    return desired;
  }

  /**
   * Writes the status when it differs from what is stored, with the kstatus
   * conditions that `ready` implies (conditions.ts) and the Expiring condition
   * (expiry.ts); emits an event when the Ready condition's reason changes into
   * a failure, and one when the key reaches an expiry warning threshold.
   */
  private async writeStatus(ak: ApiKey, base: ApiKeyStatus | undefined, now: Date, ready: Ready): Promise<ApiKey> {
    const status: ApiKeyStatus = { ...ownedStatus(base) };
    status.observedGeneration = ak.metadata.generation;
    status.secretName = secretNameOf(ak);
    if (ak.spec.expiresAt) status.expiresAt = ak.spec.expiresAt; else delete status.expiresAt;
    const before = getCondition(ak.status?.conditions, 'Ready');
    const expiringBefore = getCondition(ak.status?.conditions, EXPIRING);
    const expiring = expiringCondition(ak.spec.expiresAt, now, this.warningsMs);
    let conditions = setReadyConditions(ak.status?.conditions, ready, ak.metadata.generation, now);
    conditions = expiring
      ? setCondition(conditions, { type: EXPIRING, ...expiring, observedGeneration: ak.metadata.generation }, now)
      : conditions.filter((c) => c.type !== EXPIRING);
    status.conditions = conditions;
    if (sameStatus(status, ownedStatus(ak.status))) return ak;
    const updated = await this.writes.applyStatus(ak, status);
    if (before?.reason !== ready.reason && ready.status === 'False') {
      this.writes.event(updated, 'Warning', ready.reason, 'Reconcile', ready.message);
    }
    if (expiring?.status === 'True' && expiringBefore?.message !== expiring.message) {
      this.writes.event(updated, 'Warning', expiring.reason, 'WarnExpiry', expiring.message);
    }
    return updated;
  }

  /** When to look at the key again: the end of a grace period, the next expiry threshold, expiry, or the next scheduled rotation. */
  private nextVisit(ak: ApiKey, now: Date): ReconcileResult {
    const times: number[] = [];
    const s = ak.status ?? {};
    if (s.previousSecretValidUntil) times.push(Date.parse(s.previousSecretValidUntil));
    if (ak.spec.expiresAt) {
      const expiresAtMs = Date.parse(ak.spec.expiresAt);
      times.push(expiresAtMs, nextThreshold(expiresAtMs, now.getTime(), this.warningsMs) ?? NaN);
    }
    const everyMs = parseDuration(ak.spec.rotation?.every);
    if (everyMs !== undefined) {
      times.push(Date.parse(s.lastRotationTime ?? (ak.metadata.creationTimestamp as unknown as string)) + everyMs);
    }
    const future = times.filter((t) => !Number.isNaN(t)).map((t) => t - now.getTime()).filter((d) => d > 0);
    return future.length ? { requeueAfterMs: Math.min(...future) + 50 } : {};
  }
}

/**
 * Why the key's Deployment cannot be used, or undefined when it can. A key
 * whose owner is gone (or was replaced by a new Deployment of the same name)
 * is never adopted by the new one: the garbage collector deletes it.
 */
function deploymentMissing(ak: ApiKey, dep: Deployment | undefined): Ready | undefined {
  const ref = deploymentOwnerRef(ak);
  const depName = ak.spec.deploymentRef.name;
  if (ref && (!dep || dep.metadata.uid !== ref.uid)) {
    return { status: 'False', reason: Reason.DeploymentNotFound,
      message: `Deployment ${depName} (uid ${ref.uid}) was deleted; this key is being garbage-collected` };
  }
  if (!dep) {
    return { status: 'False', reason: Reason.DeploymentNotFound,
      message: `Deployment ${depName} (apikeys.dev) does not exist in namespace ${ak.metadata.namespace}` };
  }
  if (!ref && dep.metadata.deletionTimestamp) {
    // Never adopt into a Deployment on its way out: after `kubectl delete --cascade=orphan` the garbage
    // collector has just removed this very ownerReference, and putting it back would have the key deleted.
    return { status: 'False', reason: Reason.DeploymentNotFound,
      message: `Deployment ${depName} is being deleted; this key is not adopted by it` };
  }
  return undefined;
}

function storedCredentials(secret: SecretObject): KeyState['stored'] {
  const keyId = readCredential(secret, SECRET_KEYS.id);
  const value = readCredential(secret, SECRET_KEYS.secret);
  return { keyId, value, hash: value ? hashSecret(value) : undefined };
}
