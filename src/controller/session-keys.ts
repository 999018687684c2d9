/**
 * The in-cluster console's shared session state, made by the controller
 * (leader only) so that it exists however the chart was applied (helm, or a
 * GitOps tool that renders without `lookup`):
 *
 * - The Secret SESSION_KEYS_SECRET (operator namespace, type Opaque), key
 *   SESSION_KEYS_FILE: the keys that seal the console's cookies, rotated and
 *   retired by shared/session-keys.ts's plan. Every console replica mounts it.
 *   A Secret edited into anything unreadable is replaced (its keys are then
 *   lost: people sign in again), never trusted.
 * - The ConfigMap SIGN_OUTS_CONFIGMAP: made empty when missing, and never
 *   written again here; the console records sign-outs in it
 *   (console/sign-outs.ts), with RBAC for that one object only.
 *
 * Writes carry the resourceVersion read, so two writers never both succeed.
 */
import { MANAGED_BY, MANAGED_BY_LABEL, type SecretObject } from '../api/index.ts';
import { isAlreadyExists, isNotFound, paths, type KubeClient } from '../kube/client.ts';
import type { Logger } from '../shared/log.ts';
import {
  nextSessionKeyChange, parseSessionKeysFile, planSessionKeys, serializeSessionKeys, SESSION_KEYS_FILE, SESSION_KEYS_SECRET, SIGN_OUTS_CONFIGMAP,
  type SessionKeyPolicy,
} from '../shared/session-keys.ts';
import type { ConfigMapObject } from './ca-bundle.ts';

/** Look again at least this often: a Secret or ConfigMap deleted by hand is made again within it. */
export const SESSION_KEYS_RECHECK_MS = 5 * 60_000;

export interface SessionKeysDeps {
  client: KubeClient;
  namespace: string;
  policy: SessionKeyPolicy;
  log: Logger;
  beforeWrite?(): void;
}

async function read<T>(client: KubeClient, path: string): Promise<T | undefined> {
  try {
    return await client.get<T>(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

const labels = (old?: Record<string, string>) => ({ ...old, [MANAGED_BY_LABEL]: MANAGED_BY });

/** One pass: the keys Secret, then the sign-outs ConfigMap; returns ms until the next pass is due. */
export async function reconcileSessionKeys(deps: SessionKeysDeps, now = Date.now()): Promise<number> {
  const { client, namespace, policy, log } = deps;
  const path = paths.object('', 'v1', 'secrets', namespace, SESSION_KEYS_SECRET);
  const secret = await read<SecretObject>(client, path);
  const text = secret?.data?.[SESSION_KEYS_FILE] ? Buffer.from(secret.data[SESSION_KEYS_FILE], 'base64').toString('utf8') : undefined;
  const plan = planSessionKeys(parseSessionKeysFile(text).keys, policy, now);
  const wanted = serializeSessionKeys(plan.keys, policy);
  if (wanted !== text) {
    deps.beforeWrite?.();
    const body: SecretObject = {
      apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
      metadata: {
        name: SESSION_KEYS_SECRET, namespace, labels: labels(secret?.metadata?.labels), annotations: secret?.metadata?.annotations,
        resourceVersion: secret?.metadata?.resourceVersion,
      },
      data: { [SESSION_KEYS_FILE]: Buffer.from(wanted).toString('base64') },
    };
    if (secret) await client.replace(path, body);
    else await client.create(paths.collection('', 'v1', 'secrets', namespace), body);
    log.info({ secret: `${namespace}/${SESSION_KEYS_SECRET}`, keys: plan.keys.length, made: plan.made, retired: plan.retired }, 'console session keys updated');
  }

  const cmPath = paths.object('', 'v1', 'configmaps', namespace, SIGN_OUTS_CONFIGMAP);
  if (!await read<ConfigMapObject>(client, cmPath)) {
    deps.beforeWrite?.();
    try {
      await client.create(paths.collection('', 'v1', 'configmaps', namespace), {
        apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: SIGN_OUTS_CONFIGMAP, namespace, labels: labels() }, data: {},
      });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }
  return Math.max(1000, Math.min(SESSION_KEYS_RECHECK_MS, nextSessionKeyChange(plan.keys, policy) - now));
}
