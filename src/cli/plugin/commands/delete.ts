/**
 * `kubectl apikey delete NAME`: deletes an ApiKey after a y/N confirmation on
 * a terminal; without a terminal it needs --yes, so a script never deletes a
 * key by accident. The credentials Secret goes with the key (the Kubernetes
 * garbage collector follows its ownerReference), and the token server stops
 * issuing tokens for it at once.
 */
import { createInterface } from 'node:readline/promises';
import { reportedSecretNameOf, type ApiKey } from '../../../api/index.ts';
import type { CommandDef, Invocation } from '../command.ts';
import { PluginError, PluginUsageError } from '../errors.ts';
import { APIKEY_RESOURCE } from '../resources.ts';

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(question);
    return /^(y|yes)$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

async function del(inv: Invocation): Promise<number> {
  const name = inv.positionals[0]!;
  const yes = inv.values.yes === true;
  if (!yes && !process.stdin.isTTY) {
    throw new PluginUsageError(`refusing to delete ApiKey "${name}" without confirmation: stdin is not a terminal, so pass --yes`);
  }
  const s = await inv.session();
  const ak = await s.getApiKey(name);
  const secretName = reportedSecretNameOf(ak);
  if (!yes) {
    const ok = await confirm(
      `Delete ApiKey "${name}" (key id ${ak.status?.keyId ?? '<pending>'}, Deployment "${ak.spec.deploymentRef.name}") in namespace "${s.namespace}"?\n` +
      `Its Secret "${secretName}" is deleted with it and its tokens stop working. [y/N] `);
    if (!ok) throw new PluginError(`not deleted: ApiKey "${name}" is unchanged`);
  }
  await s.call({ verb: 'delete', resource: APIKEY_RESOURCE, namespace: s.namespace, name }, async (c) => {
    try {
      // The uid precondition: never delete a key re-created under the same name since it was shown.
      await c.delete<ApiKey>(s.apiKeyPath(name), {
        apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background', preconditions: { uid: ak.metadata.uid },
      });
    } catch (err) {
      if ((err as { status?: number }).status === 404) return;
      if ((err as { status?: number }).status === 409) {
        throw new PluginError(`ApiKey "${name}" was replaced by another key of the same name meanwhile; nothing deleted, run the command again`);
      }
      throw err;
    }
  });
  process.stdout.write(`apikey.apikeys.dev "${name}" deleted; its Secret "${secretName}" is removed by the garbage collector\n`);
  return 0;
}

export const deleteCommand: CommandDef = {
  name: 'delete',
  summary: 'delete an API key and its Secret',
  description: [
    'Delete an API key. Its Secret is deleted with it, and the token server stops issuing tokens for it',
    'at once. Asks for confirmation on a terminal; elsewhere (scripts, CI) it needs --yes.',
  ].join('\n'),
  usage: 'delete NAME [--yes] [flags]',
  positionals: { min: 1, max: 1, names: ['NAME'] },
  flags: [
    { name: 'yes', short: 'y', type: 'boolean', help: 'do not ask for confirmation' },
  ],
  examples: [
    'kubectl apikey delete ci-deployer',
    'kubectl apikey delete ci-deployer -n team-a --yes',
  ],
  run: del,
};
