/**
 * Every branch of the ApiKey reconcile, as a table in the style of
 * cert-manager's readiness_controller_test.go: each case gives what the
 * caches and the apiserver hold and a fixed clock, and expects the ordered
 * list of writes the reconcile makes, and what they must hold.
 */
import { describe, expect, it } from 'vitest';
import { credentialsSecret, readCredential, type ApiKey, type Deployment, type SecretObject } from '../api/index.ts';
import { generateKeyId, generateSecret, hashSecret, secretMatchesHash } from '../keys/format.ts';
import { KubeError } from '../kube/client.ts';
import { ApiKeyReconciler, decideAction, type ApiKeyStatus, type ApiKeyWrites, type ReconcileResult } from './apikey.ts';
import { expiringCondition, parseExpiryWarnings } from './expiry.ts';

const NOW = new Date('2026-06-01T12:00:00Z');
const NS = 'team-a';
const DEP_UID = '11111111-0000-4000-8000-000000000001';
const KEY_UID = '22222222-0000-4000-8000-000000000002';
const TOKEN_URL = 'http://token.apikey-operator.svc:8080/oauth/token';
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
const HOUR = 3600_000;

const deployment = (uid = DEP_UID): Deployment => ({
  apiVersion: 'apikeys.dev/v1', kind: 'Deployment',
  metadata: { name: 'airflow', namespace: NS, uid, generation: 1 },
  spec: { audiences: ['https://airflow.example.com'] },
});

/** The key's existing credentials: an id, a secret, and the hash the status holds of it. */
const ID = generateKeyId();
const SECRET = generateSecret();
const OLD_SECRET = generateSecret();
const ready = { type: 'Ready', status: 'True', reason: 'SecretReady', message: 'The credentials Secret is up to date', observedGeneration: 1, lastTransitionTime: at(-HOUR) } as const;
/** A status's conditions as the controller writes them: Ready, and Reconciling and Stalled as its reason's class says. */
const conditions = (r: { type: 'Ready'; status: 'True' | 'False' | 'Unknown'; reason: string; message: string; observedGeneration: number;
  lastTransitionTime: string }) => [r,
  { ...r, type: 'Reconciling', status: r.reason === 'Issuing' ? 'True' as const : 'False' as const },
  { ...r, type: 'Stalled', status: r.status === 'False' ? 'True' as const : 'False' as const }];

interface KeyOpts {
  owner?: string | null;
  status?: ApiKeyStatus;
  spec?: Partial<ApiKey['spec']>;
  annotation?: string;
  deleting?: boolean;
}

function apiKey(o: KeyOpts = {}): ApiKey {
  return {
    apiVersion: 'apikeys.dev/v1', kind: 'ApiKey',
    metadata: {
      name: 'ci', namespace: NS, uid: KEY_UID, generation: 1, resourceVersion: '100',
      creationTimestamp: at(-24 * HOUR) as unknown as Date,
      annotations: o.annotation === undefined ? undefined : { 'apikeys.dev/rotate': o.annotation },
      ownerReferences: o.owner === null ? undefined
        : [{ apiVersion: 'apikeys.dev/v1', kind: 'Deployment', name: 'airflow', uid: o.owner ?? DEP_UID }],
      deletionTimestamp: o.deleting ? NOW : undefined,
    },
    spec: { deploymentRef: { name: 'airflow' }, ...o.spec },
    status: o.status,
  };
}

/** A Ready key's status, whose Secret holds `SECRET`. */
const readyStatus = (extra: Partial<ApiKeyStatus> = {}): ApiKeyStatus => ({
  observedGeneration: 1, keyId: ID, secretName: 'ci', secretHash: hashSecret(SECRET),
  lastRotationTime: at(-2 * HOUR), conditions: conditions(ready), ...extra,
});

const DAY = 24 * HOUR;
/** A Ready key's status with the Expiring condition the controller writes for `expiresAt` at NOW. */
const warnedStatus = (expiresAt: string): ApiKeyStatus => readyStatus({ expiresAt, conditions: [...conditions(ready), {
  type: 'Expiring', ...expiringCondition(expiresAt, NOW, parseExpiryWarnings('720h,168h,24h'))!, observedGeneration: 1, lastTransitionTime: at(-HOUR),
}] });

/** The Secret of a key, as this controller writes it. */
const secretOf = (ak: ApiKey, keyId = ID, secret = SECRET): SecretObject =>
  credentialsSecret(ak, { keyId, secret, tokenUrl: TOKEN_URL, audience: 'https://airflow.example.com' });
/** An ApiKey of another namespace whose status claims the key id `ID`, created at `created`. */
const other = (created: string): ApiKey => ({
  ...apiKey({ status: readyStatus() }),
  metadata: { name: 'thief', namespace: 'other-ns', uid: '44444444-0000-4000-8000-000000000004', creationTimestamp: created as unknown as Date },
});
/** The status of a new key that found a foreign Secret of its name. */
const conflicted: ApiKeyStatus = { observedGeneration: 1, secretName: 'ci', conditions: conditions({ ...ready, status: 'False', reason: 'SecretConflict',
  message: 'Secret ci exists and is not controlled by this ApiKey; it was left untouched' }) };
/** A key's Secret as its create made it with a template label `team`, which the template no longer lists. */
const createdWithLabel: SecretObject = (() => {
  const s = secretOf(apiKey({ spec: { secretTemplate: { labels: { team: 'data' } } } }));
  return { ...s, metadata: { ...s.metadata, managedFields: [
    { manager: 'apikey-operator', operation: 'Update', apiVersion: 'v1', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:team': {} } } } }] } };
})();
const foreignSecret: SecretObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ci', namespace: NS }, data: {} };

interface Case {
  key?: ApiKey;
  dep?: Deployment;
  /** The Secret in the cache, and (if different) as the apiserver has it now; a create fails AlreadyExists when `live` is there. */
  cached?: SecretObject;
  live?: SecretObject | null;
  /** Other ApiKeys whose status claims the same key id. */
  sameKeyId?: ApiKey[];
  /** The create of the Secret fails with this. */
  createError?: KubeError;
  writes: string[];
  /** Filled with the writes as they are made, for a run that throws. */
  seen?: string[];
  check?: (r: Recorded) => void;
  requeueAfterMs?: number;
}

interface Recorded {
  statuses: ApiKeyStatus[];
  secrets: SecretObject[];
  notes: string[];
  result: ReconcileResult;
}

async function run(c: Case): Promise<{ writes: string[]; rec: Recorded }> {
  const writes: string[] = c.seen ?? [];
  const rec: Recorded = { statuses: [], secrets: [], notes: [], result: {} };
  let rv = 100;
  const live = c.live === undefined ? c.cached : (c.live ?? undefined);
  const w: ApiKeyWrites = {
    setOwner(ak, dep) {
      writes.push('setOwner');
      return Promise.resolve({ ...ak, metadata: { ...ak.metadata, resourceVersion: String(++rv),
        ownerReferences: [{ apiVersion: 'apikeys.dev/v1', kind: 'Deployment', name: dep.metadata.name!, uid: dep.metadata.uid! }] } });
    },
    applyStatus(ak, status) {
      const r = status.conditions?.find((x) => x.type === 'Ready');
      writes.push(`status Ready=${r?.status} ${r?.reason}`);
      rec.statuses.push(structuredClone(status));
      return Promise.resolve({ ...ak, metadata: { ...ak.metadata, resourceVersion: String(++rv) }, status });
    },
    applySecret(s) {
      writes.push('secret');
      rec.secrets.push(s);
      return Promise.resolve(s);
    },
    createSecret(s) {
      writes.push('create secret');
      if (c.createError) return Promise.reject(c.createError);
      if (live) return Promise.reject(new KubeError(409, 'AlreadyExists', 'secrets "ci" already exists'));
      rec.secrets.push(s);
      return Promise.resolve(s);
    },
    removeSecretMetadata(s, keys) {
      writes.push(`remove labels ${keys.labels.join(',')} annotations ${keys.annotations.join(',')}`);
      return Promise.resolve(s);
    },
    event(_ak, type, reason, _action, note) {
      writes.push(`event ${type} ${reason}`);
      rec.notes.push(note);
    },
  };
  const r = new ApiKeyReconciler({
    apiKey: () => c.key,
    deployment: () => c.dep,
    apiKeysWithKeyId: (keyId) => [c.key, ...(c.sameKeyId ?? [])].filter((k): k is ApiKey => k?.status?.keyId === keyId),
    cachedSecret: () => c.cached,
    liveSecret: () => Promise.resolve(live),
  }, w, { tokenUrl: TOKEN_URL, defaultAudiences: ['default-aud'] }, () => NOW);
  rec.result = await r.reconcile(NS, 'ci');
  return { writes, rec };
}

const secretIn = (s: SecretObject) => readCredential(s, 'API_KEY_SECRET')!;
const idIn = (s: SecretObject) => readCredential(s, 'API_KEY_ID')!;

const grace = { previousSecretHash: hashSecret(OLD_SECRET), previousSecretValidUntil: at(HOUR) };

const cases: Record<string, Case> = {
  'does nothing for a key that is gone': { writes: [] },
  'does nothing for a key being deleted': { key: apiKey({ deleting: true }), dep: deployment(), writes: [] },
  'reports a Deployment that does not exist, once, with a Warning event': {
    key: apiKey({ owner: null }),
    writes: ['status Ready=False DeploymentNotFound', 'event Warning DeploymentNotFound'],
    check: (r) => expect(r.notes[0]).toContain('does not exist in namespace team-a'),
  },
  'writes nothing when the missing Deployment is already reported': {
    key: apiKey({ owner: null, status: { observedGeneration: 1, secretName: 'ci', conditions: conditions({ ...ready, status: 'False', reason: 'DeploymentNotFound', message: 'Deployment airflow (apikeys.dev) does not exist in namespace team-a' }) } }),
    writes: [],
  },
  'never adopts a key into a Deployment re-created under the same name': {
    key: apiKey({ status: readyStatus() }), dep: deployment('33333333-0000-4000-8000-000000000003'),
    writes: ['status Ready=False DeploymentNotFound', 'event Warning DeploymentNotFound'],
    check: (r) => {
      expect(r.notes[0]).toContain('being garbage-collected');
      expect(r.statuses[0]!.secretHash).toBe(hashSecret(SECRET));
    },
  },
  'never adopts a key into a Deployment being deleted (the garbage collector just orphaned it)': {
    key: apiKey({ owner: null, status: readyStatus() }),
    dep: { ...deployment(), metadata: { ...deployment().metadata, deletionTimestamp: new Date('2026-01-01T00:00:00Z') } },
    writes: ['status Ready=False DeploymentNotFound', 'event Warning DeploymentNotFound'],
    check: (r) => expect(r.notes[0]).toContain('is being deleted; this key is not adopted'),
  },
  'creates credentials for a new key in four requests: ownerReference, the Secret\'s create, one status (Ready), the event': {
    key: apiKey({ owner: null }), dep: deployment(),
    writes: ['setOwner', 'create secret', 'status Ready=True SecretReady', 'event Normal Created'],
    check: (r) => {
      expect(r.statuses).toHaveLength(1);
      const s = r.secrets[0]!;
      expect(secretMatchesHash(secretIn(s), r.statuses[0]!.secretHash)).toBe(true);
      expect(r.statuses[0]!.keyId).toBe(idIn(s));
      expect(readCredential(s, 'AUDIENCE')).toBe('https://airflow.example.com');
      expect(readCredential(s, 'TOKEN_URL')).toBe(TOKEN_URL);
    },
  },
  'records a rotate annotation present at creation as seen, so it does not rotate at once': {
    key: apiKey({ annotation: 'v1' }), dep: deployment(),
    writes: ['create secret', 'status Ready=True SecretReady', 'event Normal Created'],
    check: (r) => {
      expect(r.statuses[0]!.rotateAnnotation).toBe('v1');
      expect(r.statuses[0]!.lastRotationTime).toBeUndefined();
    },
  },
  'stands down when an earlier ApiKey claimed its key id first, without naming it': {
    key: apiKey({ status: readyStatus() }), dep: deployment(), cached: secretOf(apiKey()),
    sameKeyId: [other('2026-01-01T00:00:00Z')],
    writes: ['status Ready=False KeyIdConflict', 'event Warning KeyIdConflict'],
    check: (r) => {
      expect(r.notes[0]).toContain(ID);
      expect(r.notes[0]).not.toContain('other-ns');
      expect(r.statuses[0]!.secretHash).toBe(hashSecret(SECRET));
    },
  },
  'keeps working when a later ApiKey claims its key id too': {
    key: apiKey({ status: readyStatus() }), dep: deployment(), cached: secretOf(apiKey()),
    sameKeyId: [other('2026-12-01T00:00:00Z')],
    writes: [],
  },
  'leaves a Secret it does not control untouched and says so': {
    key: apiKey(), dep: deployment(), cached: foreignSecret,
    writes: ['status Ready=False SecretConflict', 'event Warning SecretConflict'],
  },
  'finds a Secret it does not control, which the cache never holds, at a new key\'s create, and puts the status back as it was': {
    key: apiKey(), dep: deployment(), live: foreignSecret,
    writes: ['create secret', 'status Ready=False SecretConflict', 'event Warning SecretConflict'],
    check: (r) => {
      expect(r.statuses[0]!.keyId).toBeUndefined();
      expect(r.statuses[0]!.secretHash).toBeUndefined();
    },
  },
  'replaces a Secret it controls that the cache had not seen at a new key\'s create, with a warning (the status never vouched for it)': {
    key: apiKey(), dep: deployment(), live: secretOf(apiKey()),
    writes: ['create secret', 'status Ready=Unknown Issuing', 'secret', 'status Ready=True SecretReady', 'event Warning SecretModified'],
    check: (r) => {
      // Status first from here: its resourceVersion stops a pass that decided on a stale key before the Secret.
      expect(secretIn(r.secrets[0]!)).not.toBe(SECRET);
      expect(secretMatchesHash(secretIn(r.secrets[0]!), r.statuses[0]!.secretHash)).toBe(true);
    },
  },
  'looks again, live, at a key that found a foreign Secret, and writes nothing while it is there': {
    key: apiKey({ status: conflicted }), dep: deployment(), live: foreignSecret,
    writes: [],
  },
  'creates the Secret of a key that found a foreign Secret once that one is gone': {
    key: apiKey({ status: conflicted }), dep: deployment(),
    writes: ['create secret', 'status Ready=True SecretReady', 'event Normal Created'],
  },
  'never adopts a Secret the status does not vouch for, even one it controls: another key\'s id planted there is replaced': {
    key: apiKey(), dep: deployment(), cached: secretOf(apiKey()),
    writes: ['status Ready=Unknown Issuing', 'secret', 'status Ready=True SecretReady', 'event Warning SecretModified'],
    check: (r) => {
      expect(r.statuses[0]!.keyId).toMatch(/^ak_/);
      expect(r.statuses[0]!.keyId).not.toBe(ID);
      expect(idIn(r.secrets[0]!)).toBe(r.statuses[0]!.keyId);
      expect(secretIn(r.secrets[0]!)).not.toBe(SECRET);
      expect(secretMatchesHash(secretIn(r.secrets[0]!), r.statuses[0]!.secretHash)).toBe(true);
    },
  },
  'finishes the creation of a key whose creating pass stopped after its status write, same key id, no warning': {
    key: apiKey({ status: { keyId: ID, secretHash: hashSecret(generateSecret()), secretName: 'ci', observedGeneration: 1,
      conditions: conditions({ ...ready, status: 'Unknown', reason: 'Issuing', message: 'Writing the credentials Secret' }) } }),
    dep: deployment(),
    writes: ['status Ready=Unknown Issuing', 'create secret', 'status Ready=True SecretReady', 'event Normal Created'],
    check: (r) => {
      expect(idIn(r.secrets[0]!)).toBe(ID);
      expect(secretMatchesHash(secretIn(r.secrets[0]!), r.statuses[0]!.secretHash)).toBe(true);
    },
  },
  'replaces a deleted Secret: status first, then the Secret, same key id, and a Warning': {
    key: apiKey({ status: readyStatus(grace) }), dep: deployment(),
    writes: ['status Ready=True SecretReady', 'create secret', 'event Warning SecretRecreated'],
    check: (r) => {
      expect(idIn(r.secrets[0]!)).toBe(ID);
      expect(secretIn(r.secrets[0]!)).not.toBe(SECRET);
      expect(secretMatchesHash(secretIn(r.secrets[0]!), r.statuses[0]!.secretHash)).toBe(true);
      expect(r.statuses[0]!.previousSecretHash).toBeUndefined();
      expect(r.statuses[0]!.lastRotationTime).toBe(at(0));
    },
  },
  'replaces a Secret changed by hand, voiding the old secret and any previous one at once': {
    key: apiKey({ status: readyStatus(grace) }), dep: deployment(), cached: secretOf(apiKey(), ID, generateSecret()),
    writes: ['status Ready=True SecretReady', 'secret', 'event Warning SecretModified'],
    check: (r) => {
      expect(r.statuses[0]!.previousSecretHash).toBeUndefined();
      expect(secretMatchesHash(secretIn(r.secrets[0]!), r.statuses[0]!.secretHash)).toBe(true);
    },
  },
  'puts back the key id of a Secret that lost it, keeping its secret': {
    key: apiKey({ status: readyStatus() }), dep: deployment(),
    cached: { ...secretOf(apiKey()), data: { API_KEY_SECRET: Buffer.from(SECRET).toString('base64') } },
    writes: ['secret'],
    check: (r) => {
      expect(idIn(r.secrets[0]!)).toBe(ID);
      expect(secretIn(r.secrets[0]!)).toBe(SECRET);
    },
  },
  'decides on the live Secret when the cached one disagrees with the status (stale cache)': {
    key: apiKey({ status: readyStatus() }), dep: deployment(),
    cached: secretOf(apiKey(), ID, OLD_SECRET), live: secretOf(apiKey()),
    writes: [],
  },
  'completes a rotation interrupted between its status and Secret writes, without an event': {
    key: apiKey({ status: readyStatus({ secretHash: hashSecret(generateSecret()), previousSecretHash: hashSecret(SECRET), previousSecretValidUntil: at(HOUR), rotateAnnotation: 'r1' }), annotation: 'r1' }),
    dep: deployment(), cached: secretOf(apiKey()),
    writes: ['status Ready=True SecretReady', 'secret'], requeueAfterMs: HOUR + 50,
    check: (r) => {
      expect(r.statuses[0]!.previousSecretHash).toBe(hashSecret(SECRET));
      expect(r.statuses[0]!.previousSecretValidUntil).toBe(at(HOUR));
      expect(secretMatchesHash(secretIn(r.secrets[0]!), r.statuses[0]!.secretHash)).toBe(true);
    },
  },
  'rotates on a new annotation value: the old secret stays valid for the grace period': {
    key: apiKey({ status: readyStatus({ rotateAnnotation: 'r1' }), annotation: 'r2', spec: { rotation: { gracePeriod: '30m' } } }),
    dep: deployment(), cached: secretOf(apiKey()),
    writes: ['status Ready=True SecretReady', 'secret', 'event Normal Rotated'],
    requeueAfterMs: 30 * 60_000 + 50,
    check: (r) => {
      const s = r.statuses[0]!;
      expect(s.previousSecretHash).toBe(hashSecret(SECRET));
      expect(s.previousSecretValidUntil).toBe(at(30 * 60_000));
      expect(s.rotateAnnotation).toBe('r2');
      expect(s.lastRotationTime).toBe(at(0));
      expect(secretMatchesHash(secretIn(r.secrets[0]!), s.secretHash)).toBe(true);
      expect(r.notes[0]).toContain('annotation apikeys.dev/rotate');
    },
  },
  'rotates on schedule once rotation.every has passed since the last rotation': {
    key: apiKey({ status: readyStatus(), spec: { rotation: { every: '1h' } } }), dep: deployment(), cached: secretOf(apiKey()),
    writes: ['status Ready=True SecretReady', 'secret', 'event Normal Rotated'],
    requeueAfterMs: HOUR + 50,
    check: (r) => expect(r.notes[0]).toContain('(schedule)'),
  },
  'does not rotate before rotation.every has passed, and comes back when it has': {
    key: apiKey({ status: readyStatus(), spec: { rotation: { every: '3h' } } }), dep: deployment(), cached: secretOf(apiKey()),
    writes: [], requeueAfterMs: HOUR + 50,
  },
  'does not rotate an expired key, but records the annotation as seen': {
    key: apiKey({ status: readyStatus({ expiresAt: at(-HOUR) }), annotation: 'r9', spec: { expiresAt: at(-HOUR) } }),
    dep: deployment(), cached: secretOf(apiKey()),
    writes: ['status Ready=False Expired', 'event Warning Expired'],
    check: (r) => {
      expect(r.statuses[0]!.rotateAnnotation).toBe('r9');
      expect(r.statuses[0]!.secretHash).toBe(hashSecret(SECRET));
      expect(r.statuses[0]!.conditions!.find((c) => c.type === 'Expiring')).toMatchObject({ status: 'False', reason: 'Expired' });
    },
  },
  'writes nothing for a key that is as it should be, and comes back at its expiry': {
    key: apiKey({ status: warnedStatus(at(2 * HOUR)), spec: { expiresAt: at(2 * HOUR) } }),
    dep: deployment(), cached: secretOf(apiKey({ spec: { expiresAt: at(2 * HOUR) } })),
    writes: [], requeueAfterMs: 2 * HOUR + 50,
  },
  'says a key far from expiry is not expiring, with no event, and comes back at the first threshold (30 days before)': {
    key: apiKey({ status: readyStatus(), spec: { expiresAt: at(40 * DAY) } }), dep: deployment(), cached: secretOf(apiKey()),
    writes: ['status Ready=True SecretReady'], requeueAfterMs: 10 * DAY + 50,
    check: (r) => expect(r.statuses[0]!.conditions!.find((c) => c.type === 'Expiring'))
      .toMatchObject({ status: 'False', reason: 'ExpiryNotNear', message: `The key expires at ${at(40 * DAY)}` }),
  },
  'warns once a key is within a threshold: Expiring=True, Ready stays True, a Warning event, and back at the next threshold': {
    key: apiKey({ status: readyStatus(), spec: { expiresAt: at(5 * DAY) } }), dep: deployment(), cached: secretOf(apiKey()),
    writes: ['status Ready=True SecretReady', 'event Warning ExpiresSoon'], requeueAfterMs: 4 * DAY + 50,
    check: (r) => {
      expect(r.statuses[0]!.conditions!.find((c) => c.type === 'Expiring')).toMatchObject({ status: 'True', reason: 'ExpiresSoon' });
      expect(r.notes[0]).toBe(`The key expires at ${at(5 * DAY)}, less than 168h from now; give its users a new key, or move spec.expiresAt`);
    },
  },
  'warns nothing twice: a key already warned at its threshold writes nothing and comes back at the next one': {
    key: apiKey({ status: warnedStatus(at(5 * DAY)), spec: { expiresAt: at(5 * DAY) } }), dep: deployment(), cached: secretOf(apiKey()),
    writes: [], requeueAfterMs: 4 * DAY + 50,
  },
  'warns again when the key crosses the next threshold': {
    key: apiKey({ status: warnedStatus(at(5 * DAY)), spec: { expiresAt: at(20 * HOUR) } }), dep: deployment(), cached: secretOf(apiKey()),
    writes: ['status Ready=True SecretReady', 'event Warning ExpiresSoon'], requeueAfterMs: 20 * HOUR + 50,
    check: (r) => expect(r.notes[0]).toContain('less than 24h from now'),
  },
  'drops the Expiring condition when spec.expiresAt is removed': {
    key: apiKey({ status: warnedStatus(at(5 * DAY)) }), dep: deployment(), cached: secretOf(apiKey()),
    writes: ['status Ready=True SecretReady'],
    check: (r) => {
      expect(r.statuses[0]!.conditions!.map((c) => c.type)).toEqual(['Ready', 'Reconciling', 'Stalled']);
      expect(r.statuses[0]!.expiresAt).toBeUndefined();
    },
  },
  'repairs drift in the Secret (a template label) with no new secret': {
    key: apiKey({ status: readyStatus(), spec: { secretTemplate: { labels: { team: 'data' } } } }),
    dep: deployment(), cached: secretOf(apiKey()),
    writes: ['secret'],
    check: (r) => {
      expect(r.secrets[0]!.metadata!.labels!.team).toBe('data');
      expect(secretIn(r.secrets[0]!)).toBe(SECRET);
    },
  },
  'removes a template label the Secret\'s create set, which an apply cannot remove': {
    key: apiKey({ status: readyStatus() }), dep: deployment(), cached: createdWithLabel,
    writes: ['secret', 'remove labels team annotations '],
  },
  'ends a grace period that has passed': {
    key: apiKey({ status: readyStatus({ previousSecretHash: hashSecret(OLD_SECRET), previousSecretValidUntil: at(-1000) }) }),
    dep: deployment(), cached: secretOf(apiKey()),
    writes: ['status Ready=True SecretReady'],
    check: (r) => {
      expect(r.statuses[0]!.previousSecretHash).toBeUndefined();
      expect(r.statuses[0]!.previousSecretValidUntil).toBeUndefined();
    },
  },
  'keeps a grace period that has not passed, and comes back when it ends': {
    key: apiKey({ status: readyStatus(grace) }), dep: deployment(), cached: secretOf(apiKey()),
    writes: [], requeueAfterMs: HOUR + 50,
  },
  'follows a new generation in observedGeneration': {
    key: { ...apiKey({ status: readyStatus() }), metadata: { ...apiKey().metadata, generation: 2 } },
    dep: deployment(), cached: secretOf(apiKey()),
    writes: ['status Ready=True SecretReady'],
    check: (r) => expect(r.statuses[0]!.observedGeneration).toBe(2),
  },
};

describe('ApiKey reconcile', () => {
  it.each(Object.entries(cases))('%s', async (_name, c) => {
    const { writes, rec } = await run(c);
    expect(writes).toEqual(c.writes);
    expect(rec.result.requeueAfterMs).toBe(c.requeueAfterMs);
    c.check?.(rec);
    for (const note of rec.notes) expect(note).not.toContain('aks_');
  });

  it('keeps lastUsedAt, which the token server owns, out of every status it writes', async () => {
    const { rec } = await run({
      key: apiKey({ status: readyStatus({ lastUsedAt: at(-60_000) }), annotation: 'x' }), dep: deployment(), cached: secretOf(apiKey()), writes: [],
    });
    expect(rec.statuses.length).toBe(1);
    expect(rec.statuses[0]!.lastUsedAt).toBeUndefined();
  });
});

describe('a failed create of the Secret', () => {
  it('fails the pass on anything but AlreadyExists, for the queue to retry, with a status that names no secret and says why', async () => {
    const seen: string[] = [];
    const c: Case = { key: apiKey(), dep: deployment(), writes: [], seen,
      createError: new KubeError(403, 'Forbidden', 'admission webhook "x" denied the request: API_KEY_SECRET=aks_echoed') };
    await expect(run(c)).rejects.toThrow('denied the request');
    // A new key's Secret comes before any status: nothing names a secret that was never stored.
    expect(seen).toEqual(['create secret', 'status Ready=Unknown Issuing']);
  });

  it('says why the Secret\'s create was refused with the HTTP status and reason only, and once', async () => {
    const statuses: ApiKeyStatus[] = [];
    const refused = new KubeError(403, 'Forbidden', 'admission webhook "x" denied the request: API_KEY_SECRET=aks_echoed');
    const w = { createSecret: () => Promise.reject(refused), applyStatus: (ak: ApiKey, s: ApiKeyStatus) => {
      statuses.push(structuredClone(s));
      return Promise.resolve({ ...ak, status: s });
    } } as unknown as ApiKeyWrites;
    const key = apiKey();
    const r = new ApiKeyReconciler({ apiKey: () => key, deployment: () => deployment(), apiKeysWithKeyId: () => [],
      cachedSecret: () => undefined, liveSecret: () => Promise.resolve(undefined) }, w, { tokenUrl: TOKEN_URL, defaultAudiences: [] }, () => NOW);
    await expect(r.reconcile(NS, 'ci')).rejects.toBe(refused);
    expect(statuses).toHaveLength(1);
    const s = statuses[0]!;
    expect(s.keyId).toBeUndefined();
    expect(s.secretHash).toBeUndefined();
    const ready = s.conditions!.find((x) => x.type === 'Ready')!;
    expect(ready).toMatchObject({ status: 'Unknown', reason: 'Issuing' });
    expect(ready.message).toBe('The apiserver refused to create Secret ci (403 Forbidden); retrying');
    expect(JSON.stringify(s)).not.toContain('aks_');
  });
});

describe('decideAction', () => {
  const base = { ak: apiKey(), dep: deployment(), now: NOW, secretName: 'ci', annotation: undefined, expired: false };
  const stored = { keyId: ID, value: SECRET, hash: hashSecret(SECRET) };
  it.each([
    ['createCredentials', { secret: undefined, stored: {}, status: {} }],
    ['createCredentials', { secret: undefined, stored: {}, status: { keyId: ID } }],
    ['replaceDeletedSecret', { secret: undefined, stored: {}, status: readyStatus() }],
    ['createCredentials', { secret: secretOf(apiKey()), stored, status: {} }],
    ['replaceModifiedSecret', { secret: secretOf(apiKey()), stored: { ...stored, hash: hashSecret(OLD_SECRET) }, status: readyStatus() }],
    ['completeRotation', { secret: secretOf(apiKey()), stored, status: readyStatus({ secretHash: 'sha256:other', previousSecretHash: stored.hash }) }],
    ['convergeStatus', { secret: secretOf(apiKey()), stored, status: readyStatus() }],
  ] as const)('chooses %s', (action, st) => {
    expect(decideAction({ ...base, ...st })).toBe(action);
  });
});
