/**
 * The signing keys Secret: created on first start, rotated on schedule (see
 * src/shared/signing-keys.ts for the plan). Written with the resourceVersion
 * it was read at, so two writers can never both succeed. With a PKCS#11
 * source the new key pair is made in the token first; if the write then
 * fails (a lost race, the apiserver away) the pair stays in the token unused
 * and the next attempt makes another: the Secret is the one list of keys.
 * When a write drops a key held in the token (expired: every token it signed
 * has expired), its objects are destroyed there, after the write.
 *
 * A malformed or deleted Secret never costs the live keys: every replica
 * remembers the last good key set it saw (`SigningKeyMemory`, fed by the
 * informer whether it leads or not), and the leader writes that set back
 * (planned on as usual), so no key is dropped and no new key signs without
 * its publish lead. A malformed Secret with no good set in memory (the
 * controller started after it was broken) is left alone: the token servers
 * keep serving with the keys they hold, and a person must repair or delete
 * it. Both cases are a Warning event on the Secret, an error in the log and
 * the gauge apikey_operator_signing_keys_invalid; a deleted Secret with
 * nothing in memory is a first start.
 */
import { MANAGED_BY, MANAGED_BY_LABEL, SIGNING_KEYS_SECRET, SIGNING_KEYS_SECRET_TYPE, type SecretObject } from '../api/index.ts';
import { isNotFound, paths, type KubeClient } from '../kube/client.ts';
import {
  describeSigningKeys, nextTransition, planSigningKeys, SIGNING_KEYS_DATA_KEY, signingKeySetOf, type KeyGenerator, type RotationPolicy,
  type SigningKeySet,
} from '../shared/signing-keys.ts';
import type { Logger } from '../shared/log.ts';

/** The last good key set this replica saw, and whether the Secret in the API is unusable now. */
export class SigningKeyMemory {
  private good: SigningKeySet | undefined;
  /** Why the Secret in the API is not a usable key set, while it is not (malformed, or deleted and not yet restored). */
  problem: string | undefined;

  /** Records a Secret seen by the informer: remembered when it parses; never throws. */
  observe(secret: SecretObject): void {
    try {
      const set = signingKeySetOf(secret);
      if (set && set.keys.length) this.good = set;
    } catch {
      // The reconcile reports it.
    }
  }

  remember(set: SigningKeySet): void {
    this.good = set;
  }

  get lastGood(): SigningKeySet | undefined {
    return this.good;
  }
}

export interface SigningDeps {
  client: KubeClient;
  namespace: string;
  cached(): SecretObject | undefined;
  policy: RotationPolicy;
  /** Where new keys are made; default: the Secret (in-process keys). */
  source?: KeyGenerator;
  log: Logger;
  /** Runs before the write; a throw refuses it (NotLeaderError when this replica does not lead). */
  beforeWrite?(): void;
  onRotated(note: string, secret: SecretObject): void;
  onInvalid(note: string, secret: SecretObject): void;
  memory: SigningKeyMemory;
}

/**
 * Destroys, where the source keeps them (a PKCS#11 token), the private halves of the keys the
 * written set dropped: the plan drops a key only once every token it signed has expired, and only
 * after the write (which held the Secret's resourceVersion) so that no published key is destroyed.
 * A failure is logged and leaves the objects in the token, unused.
 */
async function retireDropped(deps: SigningDeps, before: SigningKeySet, after: SigningKeySet): Promise<void> {
  const retire = deps.source?.retire?.bind(deps.source);
  if (!retire) return;
  const kept = new Set(after.keys.map((k) => k.kid));
  for (const k of before.keys.filter((x) => x.pkcs11 && !kept.has(x.kid))) {
    try {
      const objects = await retire(k);
      deps.log.info({ kid: k.kid, label: k.pkcs11?.label, objects }, 'destroyed an expired signing key in the PKCS#11 token');
    } catch (err) {
      deps.log.warn({ kid: k.kid, label: k.pkcs11?.label, err: (err as Error).message },
        'could not destroy an expired signing key in the PKCS#11 token; it stays there, unused');
    }
  }
}

/** How soon to look again at a malformed Secret that cannot be restored. */
const BROKEN_RETRY_MS = 30_000;

/** Returns ms until the plan should be looked at again. */
export async function reconcileSigningKeys(deps: SigningDeps, now = Date.now()): Promise<number> {
  const collection = paths.collection('', 'v1', 'secrets', deps.namespace);
  const path = paths.object('', 'v1', 'secrets', deps.namespace, SIGNING_KEYS_SECRET);
  let secret = deps.cached();
  if (!secret) {
    try {
      secret = await deps.client.get<SecretObject>(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  const { memory, log } = deps;
  let current: SigningKeySet | undefined;
  let restored: string | undefined;
  if (secret) {
    try {
      current = signingKeySetOf(secret);
      if (!current?.keys.length && memory.lastGood) throw new Error(`no keys in ${SIGNING_KEYS_DATA_KEY}`);
    } catch (err) {
      // The message names kids at most, never key material (parseSigningKeySet).
      const why = (err as Error).message;
      memory.problem = `malformed: ${why}`;
      if (!memory.lastGood) {
        log.error({ why }, `the signing keys Secret ${SIGNING_KEYS_SECRET} is malformed and this controller has no good copy; `
          + 'changing nothing (token servers keep their keys): repair or delete it');
        deps.onInvalid(`Secret ${SIGNING_KEYS_SECRET} holds malformed signing keys (${why}); no good copy to restore, so nothing was changed: `
          + 'token servers keep the keys they hold. Repair or delete the Secret', secret);
        return BROKEN_RETRY_MS;
      }
      current = memory.lastGood;
      restored = `Secret ${SIGNING_KEYS_SECRET} held malformed signing keys (${why}); restored the ${current.keys.length} good keys the controller had`;
    }
  } else if (memory.lastGood) {
    memory.problem = 'deleted';
    current = memory.lastGood;
    restored = `Secret ${SIGNING_KEYS_SECRET} was deleted; restored the ${current.keys.length} good keys the controller had`;
  }
  if (restored) log.error({ keys: describeSigningKeys(current!) }, restored);
  const planned = await planSigningKeys(current, deps.policy, now, deps.source);
  // Restoring writes even when the plan changes nothing.
  const next = restored && planned === current ? { ...planned } : planned;
  if (next !== current) {
    const body: SecretObject = {
      apiVersion: 'v1', kind: 'Secret',
      metadata: {
        name: SIGNING_KEYS_SECRET, namespace: deps.namespace,
        labels: { ...secret?.metadata?.labels, [MANAGED_BY_LABEL]: MANAGED_BY },
        annotations: secret?.metadata?.annotations,
        resourceVersion: secret?.metadata?.resourceVersion,
      },
      type: SIGNING_KEYS_SECRET_TYPE,
      data: { [SIGNING_KEYS_DATA_KEY]: Buffer.from(JSON.stringify(next)).toString('base64') },
    };
    deps.beforeWrite?.();
    const written = secret
      ? await deps.client.replace<SecretObject>(path, body)
      : await deps.client.create<SecretObject>(collection, body);
    const kids = next.keys.map((k) => `${k.kid.slice(0, 8)}(${k.alg}, signs from ${k.activateAt})`).join(', ');
    memory.remember(next);
    memory.problem = undefined;
    deps.log.info({ keys: describeSigningKeys(next) }, 'signing keys updated');
    if (restored) deps.onInvalid(restored, written);
    else deps.onRotated(`Signing keys are now: ${kids}`, written);
    if (current) await retireDropped(deps, current, next);
  } else {
    memory.remember(next);
    memory.problem = undefined;
  }
  const { rotateEveryMs, publishLeadMs } = deps.policy;
  const newest = Math.max(...next.keys.map((k) => Date.parse(k.activateAt)));
  const due = newest + rotateEveryMs - publishLeadMs;
  const wake = Math.min(due, nextTransition(next, now) ?? Infinity);
  return Math.max(1000, Math.min(wake - now, 3600_000));
}
