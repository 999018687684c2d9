/**
 * `kubectl apikey rotate NAME`: asks the operator for one rotation by giving
 * the apikeys.dev/rotate annotation a fresh value (a merge patch, so no other
 * annotation is touched), waits until the operator has answered that value,
 * and says until when the previous secret keeps working.
 */
import type { ApiKey } from '../../../api/index.ts';
import { ROTATE_ANNOTATION } from '../../../api/index.ts';
import { durationFlag, type CommandDef, type Invocation } from '../command.ts';
import { PluginError, PluginUsageError } from '../../../client/errors.ts';
import { formatStructured, timeAndDistance } from '../output.ts';
import { ONLY_TIME_WARNING, printCredentials } from '../print-credentials.ts';
import { pollUntil, startProgress } from '../progress.ts';
import { APIKEY_RESOURCE, readyOf, type StoredCredentials } from '../resources.ts';
import type { Session } from '../session.ts';
import { data, text, textErr } from '../terminal.ts';

/**
 * Waits until the status answers `value` (status.rotateAnnotation), then
 * checks that the secret hash moved: lastRotationTime has only second
 * precision, so two rotations within a second would look like none.
 */
async function waitForRotation(s: Session, name: string, value: string, hashBefore: string | undefined, timeoutMs: number): Promise<ApiKey> {
  const progress = startProgress(`waiting for the operator to rotate ApiKey "${name}"`);
  try {
    const ak = await pollUntil(timeoutMs, async () => {
      const a = await s.getApiKey(name);
      return a.status?.rotateAnnotation === value ? a : undefined;
    });
    if (!ak) {
      throw new PluginError(
        `the rotation of ApiKey "${name}" was requested (annotation ${ROTATE_ANNOTATION}=${value}) but the operator did not answer within ${timeoutMs / 1000}s; ` +
        `it will rotate when it gets to it. Is apikey-operator running? (kubectl -n apikey-operator get pods)`);
    }
    if (ak.status?.secretHash === hashBefore) {
      const r = readyOf(ak);
      throw new PluginError(`the operator did not rotate ApiKey "${name}"${r ? `: ${r.reason}: ${r.message}` : ''}`);
    }
    return ak;
  } finally {
    progress.done();
  }
}

async function rotate(inv: Invocation): Promise<number> {
  const name = inv.positionals[0]!;
  const showSecret = inv.values['show-secret'] === true;
  const wait = inv.values.wait !== false;
  if (showSecret && !wait) throw new PluginUsageError('--show-secret needs to wait for the new secret; drop --no-wait');
  const timeout = durationFlag(inv.values, 'timeout', 1000)?.ms ?? 60_000;
  const s = await inv.session();
  const current = await s.getApiKey(name);
  const ready = readyOf(current);
  if (ready?.reason === 'Expired') {
    throw new PluginError(`ApiKey "${name}" has expired (spec.expiresAt ${current.spec.expiresAt}); an expired key is not rotated`);
  }
  // A key whose secret leaked is not Ready, and rotating is how it recovers (revoke.ts).
  if (ready?.status !== 'True' && ready?.reason !== 'Compromised') {
    throw new PluginError(`ApiKey "${name}" is not Ready${ready ? ` (${ready.reason}: ${ready.message})` : ''}, so it cannot be rotated now`);
  }
  let value = new Date().toISOString();
  if (value === current.metadata.annotations?.[ROTATE_ANNOTATION]) value = new Date(Date.now() + 1).toISOString();
  await s.call({ verb: 'patch', resource: APIKEY_RESOURCE, namespace: s.namespace, name },
    (c) => c.mergePatch<ApiKey>(s.apiKeyPath(name), { metadata: { annotations: { [ROTATE_ANNOTATION]: value } } }));
  if (!wait) {
    text(`Rotation of ApiKey "${name}" requested (${ROTATE_ANNOTATION}=${value}); see: kubectl apikey describe ${name} -n ${s.namespace}\n`);
    return 0;
  }
  const ak = await waitForRotation(s, name, value, current.status?.secretHash, timeout);
  let creds: StoredCredentials | undefined;
  if (showSecret) {
    creds = await pollUntil(timeout, () => s.readCredentials(ak));
    if (!creds) throw new PluginError(`ApiKey "${name}" was rotated but its Secret did not receive the new secret within ${timeout / 1000}s`);
  }
  const st = ak.status ?? {};
  if (inv.output !== 'table') {
    if (creds) textErr(`${ONLY_TIME_WARNING}\n`);
    data(formatStructured({
      name, keyId: st.keyId, lastRotationTime: st.lastRotationTime, previousSecretValidUntil: st.previousSecretValidUntil,
      secretName: st.secretName, ...(creds ? { secret: creds.secret } : {}),
    }, inv.output));
    return 0;
  }
  const until = st.previousSecretValidUntil;
  text([
    `ApiKey "${name}" rotated at ${st.lastRotationTime} (key id ${st.keyId} is unchanged).`,
    until && Date.parse(until) > Date.now()
      ? `The previous secret keeps working until ${timeAndDistance(until)}: update everything that uses it before then.`
      : 'The previous secret no longer works (no grace period).',
    creds ? '\nThe new secret:\n' : `The new secret is in Secret "${st.secretName}" in namespace "${s.namespace}".`,
    '',
  ].join('\n'));
  if (creds) printCredentials(s, name, creds);
  return 0;
}

export const rotateCommand: CommandDef = {
  name: 'rotate',
  summary: 'give an API key a new secret; the old one works for the grace period',
  description: [
    `Ask the operator to rotate an API key's secret (by setting the ${ROTATE_ANNOTATION} annotation to the`,
    'current time), wait until it has, and print until when the previous secret keeps working (the',
    "key's rotation.gracePeriod, default 1h). The key id stays the same.",
  ].join('\n'),
  usage: 'rotate NAME [flags]',
  positionals: { min: 1, max: 1, names: ['NAME'] },
  output: ['json', 'yaml', 'jsonpath'],
  flags: [
    { name: 'wait', type: 'boolean', defaultTrue: true, help: 'wait for the rotation (default); --no-wait only requests it' },
    { name: 'show-secret', type: 'boolean', help: 'print the new secret (once)' },
    { name: 'timeout', type: 'string', value: 'DURATION', help: 'how long to wait (default 60s)' },
  ],
  examples: [
    '# Rotate, then read the new secret from the Secret in your pipeline',
    'kubectl apikey rotate ci-deployer',
    '',
    '# Rotate and print the new secret to store it elsewhere',
    'kubectl apikey rotate ci-deployer --show-secret',
  ],
  run: rotate,
};
