/**
 * `kubectl apikey revoke NAME [--reason TEXT]`: a person's report that a key's secret leaked, the
 * same action secret scanning takes (src/api/compromise.ts). It writes the apikeys.dev/compromised
 * annotation naming the key's current secret by its hash, with a merge patch that carries the
 * resourceVersion it read (a key rotated meanwhile is not revoked by a report about its old
 * secret: the write fails and says so), then waits until the operator says Compromised. The key
 * then issues nothing and its tokens are inactive; `kubectl apikey rotate NAME` recovers it.
 * Needs get and patch on apikeys (apikeys.dev) in the namespace.
 */
import type { ApiKey } from '../../../api/index.ts';
import { COMPROMISED_ANNOTATION, compromiseAnnotation, MAX_REPORT_REASON } from '../../../api/compromise.ts';
import { PluginError, PluginUsageError } from '../../../client/errors.ts';
import { KubeError } from '../../../kube/client.ts';
import { durationFlag, type CommandDef, type Invocation } from '../command.ts';
import { formatStructured } from '../output.ts';
import { pollUntil, startProgress } from '../progress.ts';
import { APIKEY_RESOURCE, readyOf } from '../resources.ts';
import type { Session } from '../session.ts';
import { data, text } from '../terminal.ts';

const COMPROMISED = 'Compromised';

async function waitForRevocation(s: Session, name: string, secretHash: string, timeoutMs: number): Promise<ApiKey> {
  const progress = startProgress(`waiting for the operator to revoke ApiKey "${name}"`);
  try {
    const ak = await pollUntil(timeoutMs, async () => {
      const a = await s.getApiKey(name);
      return a.status?.compromise?.secretHash === secretHash && readyOf(a)?.reason === COMPROMISED ? a : undefined;
    });
    if (!ak) {
      throw new PluginError(
        `ApiKey "${name}" was marked compromised (annotation ${COMPROMISED_ANNOTATION}) but the operator did not confirm within ${timeoutMs / 1000}s; ` +
        'the token server refuses the key already. Is apikey-operator running? (kubectl -n apikey-operator get pods)');
    }
    return ak;
  } finally {
    progress.done();
  }
}

async function revoke(inv: Invocation): Promise<number> {
  const name = inv.positionals[0]!;
  const reason = typeof inv.values.reason === 'string' ? inv.values.reason : undefined;
  if (reason !== undefined && reason.length > MAX_REPORT_REASON) {
    throw new PluginUsageError(`--reason: at most ${MAX_REPORT_REASON} characters`);
  }
  const wait = inv.values.wait !== false;
  const timeout = durationFlag(inv.values, 'timeout', 1000)?.ms ?? 60_000;
  const s = await inv.session();
  const current = await s.getApiKey(name);
  const secretHash = current.status?.secretHash;
  if (!secretHash) throw new PluginError(`ApiKey "${name}" has no secret yet; there is nothing to revoke`);
  const already = current.status?.compromise?.secretHash === secretHash;
  if (!already) {
    const value = compromiseAnnotation({ secretHash, reportedAt: new Date().toISOString(), source: 'kubectl', reason });
    try {
      await s.call({ verb: 'patch', resource: APIKEY_RESOURCE, namespace: s.namespace, name },
        (c) => c.mergePatch<ApiKey>(s.apiKeyPath(name), {
          metadata: { resourceVersion: current.metadata.resourceVersion, annotations: { [COMPROMISED_ANNOTATION]: value } },
        }));
    } catch (err) {
      if (err instanceof KubeError && err.status === 409) {
        throw new PluginError(`ApiKey "${name}" changed while it was being revoked (rotated?); nothing was revoked. Look at it and run the command again`);
      }
      throw err;
    }
  }
  const ak = wait || already ? (already ? current : await waitForRevocation(s, name, secretHash, timeout)) : current;
  if (inv.output !== 'table') {
    data(formatStructured({ name, keyId: ak.status?.keyId, compromise: ak.status?.compromise ?? null, revoked: wait || already }, inv.output));
    return 0;
  }
  text([
    already ? `ApiKey "${name}" was already revoked.` : `ApiKey "${name}" ${wait ? 'revoked' : 'marked compromised'}: it issues no tokens, and every token it issued is inactive.`,
    `To give it a new secret and use it again: kubectl apikey rotate ${name} -n ${s.namespace}`,
    '',
  ].join('\n'));
  return 0;
}

export const revokeCommand: CommandDef = {
  name: 'revoke',
  summary: 'mark an API key compromised: it issues nothing more and its tokens are dead',
  description: [
    `Report that an API key's secret leaked, as secret scanning does (the ${COMPROMISED_ANNOTATION} annotation,`,
    'naming the current secret by its hash), and wait until the operator says Compromised. From then on the',
    'key issues no tokens and every token it issued is inactive at introspection and /authz. Rotating the key',
    '(kubectl apikey rotate NAME) gives it a new secret and makes it usable again; the revoked secret and its',
    'tokens stay dead. Needs get and patch on apikeys (apikeys.dev) in the namespace.',
  ].join('\n'),
  usage: 'revoke NAME [flags]',
  positionals: { min: 1, max: 1, names: ['NAME'] },
  output: ['json', 'yaml', 'jsonpath'],
  flags: [
    { name: 'reason', type: 'string', value: 'TEXT', help: `why, recorded in status.compromise.reason and the event (at most ${MAX_REPORT_REASON} characters)` },
    { name: 'wait', type: 'boolean', defaultTrue: true, help: 'wait for the operator to confirm (default); --no-wait only marks it' },
    { name: 'timeout', type: 'string', value: 'DURATION', help: 'how long to wait (default 60s)' },
  ],
  examples: [
    '# The secret of ci-deployer was pasted into a chat',
    'kubectl apikey revoke ci-deployer --reason "pasted into #general"',
    '',
    '# Then give it a new secret',
    'kubectl apikey rotate ci-deployer',
  ],
  run: revoke,
};
