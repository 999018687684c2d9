/**
 * The signing keys Secret: created on first start, rotated on schedule (see
 * src/shared/signing-keys.ts for the plan). Written with the resourceVersion
 * it was read at, so two writers can never both succeed. With a PKCS#11
 * source the new key pair is made in the token first; if the write then
 * fails (a lost race, the apiserver away) the pair stays in the token unused
 * and the next attempt makes another: the Secret is the one list of keys.
 */
import { MANAGED_BY, MANAGED_BY_LABEL, SIGNING_KEYS_SECRET, SIGNING_KEYS_SECRET_TYPE, type SecretObject } from '../api/index.ts';
import { isNotFound, paths, type KubeClient } from '../kube/client.ts';
import {
  describeSigningKeys, nextTransition, planSigningKeys, SIGNING_KEYS_DATA_KEY, signingKeySetOf, type KeyGenerator, type RotationPolicy,
  type SigningKeySet,
} from '../shared/signing-keys.ts';
import type { Logger } from '../shared/log.ts';

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
}

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
  let current: SigningKeySet | undefined;
  if (secret) {
    try {
      current = signingKeySetOf(secret);
    } catch (err) {
      deps.onInvalid(`Secret ${SIGNING_KEYS_SECRET} held malformed signing keys (${(err as Error).message}); generated new ones`, secret);
    }
  }
  const next = await planSigningKeys(current, deps.policy, now, deps.source);
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
    deps.log.info({ keys: describeSigningKeys(next) }, 'signing keys updated');
    deps.onRotated(`Signing keys are now: ${kids}`, written);
  }
  const { rotateEveryMs, publishLeadMs } = deps.policy;
  const newest = Math.max(...next.keys.map((k) => Date.parse(k.activateAt)));
  const due = newest + rotateEveryMs - publishLeadMs;
  const wake = Math.min(due, nextTransition(next, now) ?? Infinity);
  return Math.max(1000, Math.min(wake - now, 3600_000));
}
