/**
 * Names and small readers of the apikeys.dev resources that every command
 * uses, kept apart from the Kubernetes client so that --help and usage errors
 * answer without loading it.
 */
import type { ApiKey, Credentials, Deployment } from '../../api/index.ts';
import { APIKEYS, DEPLOYMENTS, GROUP } from '../../api/index.ts';
import { getCondition, type Condition } from '../../api/conditions.ts';

/** Resources as kubectl writes them, for messages and `kubectl auth can-i`. */
export const APIKEY_RESOURCE = `${APIKEYS}.${GROUP}`;
export const DEPLOYMENT_RESOURCE = `${DEPLOYMENTS}.${GROUP}`;
/** Kinds as kubectl's -o name writes them: apikey.apikeys.dev/NAME. */
export const APIKEY_KIND_NAME = `apikey.${GROUP}`;
export const DEPLOYMENT_KIND_NAME = `deployment.${GROUP}`;

/** The four values of a credentials Secret, and the Secret they were read from. */
export type StoredCredentials = Credentials & { secretName: string };

export function readyOf(obj: ApiKey | Deployment): Condition | undefined {
  return getCondition(obj.status?.conditions, 'Ready');
}

/** READY as kubectl would show it, with the reason when it is not True. */
export function readyColumn(obj: ApiKey | Deployment): string {
  const r = readyOf(obj);
  if (!r) return 'Unknown';
  return r.status === 'True' ? 'True' : `${r.status} (${r.reason})`;
}
