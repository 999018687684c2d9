/**
 * The seal of a credentials Secret: what lets a key restored from a backup
 * (no status, new uids, ownerReferences dropped) take back its own Secret,
 * and nothing else take one (apikey.ts, invariant 5).
 *
 * The seal is the annotation `apikeys.dev/seal` on the Secret:
 * `v1.<seal key id>.<base64url HMAC-SHA256>` over the namespace, the
 * ApiKey's name, the key id and the hash of the secret, under a key only the
 * controller holds. It binds no uid (a restore makes new ones) and no time.
 * So a Secret whose seal verifies was written by this controller, for an
 * ApiKey of that namespace and name, holding that very key id and secret:
 * copied into another namespace, renamed for another ApiKey, or given another
 * secret or key id, it no longer verifies; a tenant who may create Secrets
 * cannot make one, since the seal key lives in the operator's namespace.
 *
 * The seal keys live in one Secret of the operator's namespace
 * (`apikey-operator-seal-key`, type `apikeys.dev/seal-key`), one data entry
 * per key: the entry's name is the key's id (`[0-9A-Za-z-]{1,32}`), its
 * value 32 random bytes or more. New seals use the key with the greatest id
 * (the controller names keys by their UTC creation time, so the newest);
 * a seal by any key of the Secret verifies, so rotating is adding a newer
 * entry, and each Ready key is re-sealed with it on its next pass; the old
 * entry may go once all are. The controller creates the Secret, with one
 * key, the first time it needs one and finds none; it never changes it after.
 * A lost seal key costs what a restore cost before: the keys restored
 * without it are re-keyed (docs/operations/backup-and-restore.md).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { MANAGED_BY, MANAGED_BY_LABEL, SEAL_KEY_SECRET, SEAL_KEY_SECRET_TYPE, type SecretObject } from '../api/index.ts';
import { isAlreadyExists, isNotFound, paths, type KubeClient } from '../kube/client.ts';

export const SEAL_VERSION = 'v1';
const KEY_ID_PATTERN = /^[0-9A-Za-z-]{1,32}$/;
const MIN_KEY_BYTES = 32;
/** The longest seal annotation looked at: a longer one is refused before any HMAC. */
const MAX_SEAL_LENGTH = 128;

/** What a seal binds. */
export interface SealSubject {
  namespace: string;
  /** The ApiKey's name. */
  name: string;
  keyId: string;
  /** `status.secretHash` of the secret: `sha256:` and base64url. */
  secretHash: string;
}

/** Seals and checks seals with the keys of the seal-key Secret. */
export interface Sealer {
  seal(s: SealSubject): string;
  verify(seal: string | undefined, s: SealSubject): boolean;
}

function mac(key: Buffer, s: SealSubject): Buffer {
  // Length-prefixed fields: no two subjects give the same input.
  const h = createHmac('sha256', key).update(`apikeys.dev/seal/${SEAL_VERSION}`);
  for (const f of [s.namespace, s.name, s.keyId, s.secretHash]) h.update(`\n${Buffer.byteLength(f, 'utf8')}:${f}`);
  return h.digest();
}

/** A Sealer over a set of keys by id; the greatest id seals. Throws when there is no usable key. */
export function sealerOf(keys: ReadonlyMap<string, Buffer>): Sealer {
  const usable = new Map([...keys].filter(([id, k]) => KEY_ID_PATTERN.test(id) && k.length >= MIN_KEY_BYTES));
  const current = [...usable.keys()].sort().at(-1);
  if (current === undefined) throw new Error(`Secret ${SEAL_KEY_SECRET} holds no usable seal key (an entry of ${MIN_KEY_BYTES} bytes or more)`);
  return {
    seal: (s) => `${SEAL_VERSION}.${current}.${mac(usable.get(current)!, s).toString('base64url')}`,
    verify(seal, s) {
      if (seal === undefined || seal.length > MAX_SEAL_LENGTH) return false;
      const [version, id, tag, ...rest] = seal.split('.');
      const key = id === undefined ? undefined : usable.get(id);
      if (version !== SEAL_VERSION || !key || tag === undefined || rest.length) return false;
      const given = Buffer.from(tag, 'base64url');
      const want = mac(key, s);
      return given.length === want.length && timingSafeEqual(given, want);
    },
  };
}

/** The seal keys a seal-key Secret holds. */
export function sealKeysOf(secret: SecretObject): Map<string, Buffer> {
  return new Map(Object.entries(secret.data ?? {}).map(([id, v]) => [id, Buffer.from(v, 'base64')]));
}

/** A new key's id: its UTC creation time, so that ids sort by age (`20261207T081500Z`). */
export function sealKeyIdAt(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

export function newSealKeySecret(namespace: string, now: Date): SecretObject {
  return {
    apiVersion: 'v1', kind: 'Secret',
    metadata: { name: SEAL_KEY_SECRET, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
    type: SEAL_KEY_SECRET_TYPE,
    data: { [sealKeyIdAt(now)]: randomBytes(MIN_KEY_BYTES).toString('base64') },
  };
}

/**
 * The controller's seal keys: read from the Secret the first time they are
 * needed, created when there is none (`beforeWrite` refuses the create on a
 * replica that does not lead), then kept. Read again at most every
 * `refreshMs`, so an added key (rotation) is taken up without a restart.
 */
export class SealKeys {
  private sealer: Sealer | undefined;
  private loadedAt = 0;
  private loading: Promise<Sealer> | undefined;
  private readonly deps: { client: KubeClient; namespace: string; beforeWrite?: () => void; refreshMs?: number; now?: () => Date };

  constructor(deps: SealKeys['deps']) {
    this.deps = deps;
  }

  /** The current Sealer; throws (and is tried again on the next call) when the Secret cannot be read or made. */
  async get(): Promise<Sealer> {
    const now = (this.deps.now ?? (() => new Date()))();
    if (this.sealer && now.getTime() - this.loadedAt < (this.deps.refreshMs ?? 60_000)) return this.sealer;
    this.loading ??= this.load(now).finally(() => { this.loading = undefined; });
    try {
      return await this.loading;
    } catch (err) {
      // A Secret that became unreadable or broken keeps the keys this process already has.
      if (this.sealer) return this.sealer;
      throw err;
    }
  }

  private async load(now: Date): Promise<Sealer> {
    const { client, namespace } = this.deps;
    let secret: SecretObject;
    try {
      secret = await client.get<SecretObject>(paths.object('', 'v1', 'secrets', namespace, SEAL_KEY_SECRET));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.deps.beforeWrite?.();
      try {
        secret = await client.create<SecretObject>(paths.collection('', 'v1', 'secrets', namespace), newSealKeySecret(namespace, now));
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        secret = await client.get<SecretObject>(paths.object('', 'v1', 'secrets', namespace, SEAL_KEY_SECRET));
      }
    }
    this.sealer = sealerOf(sealKeysOf(secret));
    this.loadedAt = now.getTime();
    return this.sealer;
  }
}
