/**
 * The writes of the seed's flow, as the person, and the waits they need: a
 * new key is shown once the operator has made it Ready and written its
 * Secret; a rotation once the operator has answered the request and the
 * Secret holds the new secret. The secret is read from the Secret with the
 * person's own rights.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiKey } from '../api/index.ts';
import { ROTATE_ANNOTATION } from '../api/index.ts';
import { getCondition } from '../api/conditions.ts';
import { compromiseAnnotation, MAX_REPORT_REASON } from '../api/compromise.ts';
import type { KeyCredentials, PersonApi } from './person-api.ts';
import { Refusal, refusalOf } from './refusals.ts';

/** Ready=False reasons that waiting does not fix. */
const TERMINAL = new Set(['SecretConflict', 'Expired', 'KeyIdConflict', 'DeploymentNotFound']);

async function poll<T>(timeoutMs: number, f: () => Promise<T | undefined>): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() >= end) return undefined;
    await sleep(250);
  }
}

/** The credentials, read as the person; a refusal to read the Secret says what that means. */
async function credentialsAsPerson(api: PersonApi, ak: ApiKey): Promise<KeyCredentials | undefined> {
  try {
    return await api.readCredentials(ak);
  } catch (err) {
    const r = refusalOf(err, { verb: 'get', what: 'Secrets', namespace: ak.metadata.namespace });
    if (r.status === 403) {
      throw new Refusal(403, `ApiKey "${ak.metadata.name}" is there, but you may not get Secrets in ${ak.metadata.namespace}, ` +
        `so the console cannot show its secret. It is in Secret "${ak.status?.secretName ?? ak.metadata.name}", for whoever may read it.`);
    }
    throw r;
  }
}

/** Waits until the new key is Ready and its Secret holds its secret. */
export async function waitForNewKey(api: PersonApi, namespace: string, name: string, timeoutMs: number): Promise<{ key: ApiKey; creds: KeyCredentials }> {
  let last: ApiKey | undefined;
  const got = await poll(timeoutMs, async () => {
    last = await api.getApiKey(namespace, name);
    const ready = getCondition(last.status?.conditions, 'Ready');
    if (ready?.status === 'False' && TERMINAL.has(ready.reason)) {
      throw new Refusal(409, `ApiKey "${name}" was created but is not Ready: ${ready.reason}: ${ready.message}`);
    }
    if (ready?.status !== 'True' || !last.status?.secretHash) return undefined;
    const creds = await credentialsAsPerson(api, last);
    return creds && { key: last, creds };
  });
  if (got) return got;
  throw new Refusal(504, `ApiKey "${name}" was created but did not become Ready within ${timeoutMs / 1000}s: is apikey-operator running and watching ${namespace}? ` +
    'Its secret will not be shown here; rotate the key once it is Ready to get one.');
}

/** Asks for one rotation and waits for the operator's answer and the new secret. */
export async function rotateKey(api: PersonApi, namespace: string, name: string, timeoutMs: number): Promise<{ key: ApiKey; creds: KeyCredentials }> {
  const current = await api.getApiKey(namespace, name);
  const ready = getCondition(current.status?.conditions, 'Ready');
  if (ready?.reason === 'Expired') throw new Refusal(409, `ApiKey "${name}" has expired; an expired key is not rotated.`);
  // A key whose secret leaked is not Ready, and rotating is how it recovers (revokeKey).
  if (ready?.status !== 'True' && ready?.reason !== 'Compromised') {
    throw new Refusal(409, `ApiKey "${name}" is not Ready${ready ? ` (${ready.reason}: ${ready.message})` : ''}, so it cannot be rotated now.`);
  }
  let value = new Date().toISOString();
  if (value === current.metadata.annotations?.[ROTATE_ANNOTATION]) value = new Date(Date.now() + 1).toISOString();
  await api.requestRotation(namespace, name, value);
  const hashBefore = current.status?.secretHash;
  const got = await poll(timeoutMs, async () => {
    const ak = await api.getApiKey(namespace, name);
    if (ak.status?.rotateAnnotation !== value) return undefined;
    if (ak.status.secretHash === hashBefore) {
      const r = getCondition(ak.status.conditions, 'Ready');
      throw new Refusal(409, `The operator did not rotate ApiKey "${name}"${r ? `: ${r.reason}: ${r.message}` : ''}.`);
    }
    const creds = await credentialsAsPerson(api, ak);
    return creds && { key: ak, creds };
  });
  if (got) return got;
  throw new Refusal(504, `The rotation of ApiKey "${name}" was requested, but the operator did not finish it within ${timeoutMs / 1000}s; ` +
    'it will rotate when it gets to it. The new secret will not be shown here.');
}

/**
 * Marks the key's current secret compromised (api/compromise.ts), as `kubectl apikey revoke` does:
 * on the version of the key that was read (a key rotated meanwhile is refused, 409), then waits
 * until the operator says Compromised. True when it was revoked now, false when it already was.
 */
export async function revokeKey(api: PersonApi, namespace: string, name: string, reason: string, timeoutMs: number): Promise<boolean> {
  if (reason.length > MAX_REPORT_REASON) throw new Refusal(422, `The reason is longer than ${MAX_REPORT_REASON} characters. Nothing was revoked.`);
  const current = await api.getApiKey(namespace, name);
  const secretHash = current.status?.secretHash;
  if (!secretHash) throw new Refusal(409, `ApiKey "${name}" has no secret yet; there is nothing to revoke.`);
  if (current.status?.compromise?.secretHash === secretHash) return false;
  const value = compromiseAnnotation({ secretHash, reportedAt: new Date().toISOString(), source: 'console', reason: reason || undefined });
  try {
    await api.markCompromised(namespace, name, current.metadata.resourceVersion, value);
  } catch (err) {
    if (err instanceof Refusal && err.status === 409) {
      throw new Refusal(409, `ApiKey "${name}" changed while it was being revoked (rotated?). Nothing was revoked; look at it and try again.`);
    }
    throw err;
  }
  const done = await poll(timeoutMs, async () => {
    const ak = await api.getApiKey(namespace, name);
    return ak.status?.compromise?.secretHash === secretHash && getCondition(ak.status.conditions, 'Ready')?.reason === 'Compromised' ? true : undefined;
  });
  if (done) return true;
  throw new Refusal(504, `ApiKey "${name}" was marked compromised, but the operator did not confirm within ${timeoutMs / 1000}s; ` +
    'the token server refuses the key already.');
}
