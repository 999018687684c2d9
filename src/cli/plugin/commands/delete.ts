/**
 * `kubectl apikey delete NAME...` and `delete --all`: deletes ApiKeys after
 * one y/N confirmation on a terminal that lists them all; without a terminal
 * it needs --yes, so a script never deletes a key by accident. Every named
 * key is looked up before any is deleted: a typo deletes nothing. The
 * credentials Secret goes with each key (the Kubernetes garbage collector
 * follows its ownerReference), and the token server stops issuing tokens for
 * it at once.
 */
import { createInterface } from 'node:readline/promises';
import { reportedSecretNameOf, type ApiKey } from '../../../api/index.ts';
import type { CommandDef, Invocation } from '../command.ts';
import { PluginError, PluginUsageError } from '../../../client/errors.ts';
import { APIKEY_RESOURCE } from '../resources.ts';
import type { Session } from '../session.ts';
import { escapeTerminalLines, text, textErr } from '../terminal.ts';

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(escapeTerminalLines(question));
    return /^(y|yes)$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/** What the command line asks to delete: the named keys, or --all of the namespace. */
function targets(inv: Invocation): { names: string[]; all: boolean; what: string } {
  const all = inv.values.all === true;
  const names = [...new Set(inv.positionals)];
  if (all && names.length > 0) throw new PluginUsageError('give ApiKey names or --all, not both');
  if (!all && names.length === 0) throw new PluginUsageError('delete needs NAME... or --all (usage: kubectl apikey delete NAME... [--yes])');
  return { names, all, what: all ? 'every ApiKey' : names.map((n) => `ApiKey "${n}"`).join(', ') };
}

async function keysToDelete(s: Session, names: string[], all: boolean): Promise<ApiKey[]> {
  if (!all) return Promise.all(names.map((n) => s.getApiKey(n)));
  const { items } = await s.list<ApiKey>(APIKEY_RESOURCE, s.apiKeyPath(), false);
  return items.sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
}

const keyLine = (ak: ApiKey) =>
  `ApiKey "${ak.metadata.name}" (key id ${ak.status?.keyId ?? '<pending>'}, Deployment "${ak.spec.deploymentRef.name}")`;

/** The one confirmation question, naming every key that would be deleted. */
function question(s: Session, keys: ApiKey[]): string {
  if (keys.length === 1) {
    return `Delete ${keyLine(keys[0]!)} in namespace "${s.namespace}"?\n` +
      `Its Secret "${reportedSecretNameOf(keys[0]!)}" is deleted with it and its tokens stop working. [y/N] `;
  }
  return `Delete these ${keys.length} ApiKeys in namespace "${s.namespace}"?\n` +
    keys.map((ak) => `  ${keyLine(ak)}, Secret "${reportedSecretNameOf(ak)}"\n`).join('') +
    'Their Secrets are deleted with them and their tokens stop working. [y/N] ';
}

async function deleteKey(s: Session, ak: ApiKey): Promise<void> {
  const name = ak.metadata.name!;
  await s.call({ verb: 'delete', resource: APIKEY_RESOURCE, namespace: s.namespace, name }, async (c) => {
    try {
      // The uid precondition: never delete a key re-created under the same name since it was shown.
      await c.delete<ApiKey>(s.apiKeyPath(name), {
        apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background', preconditions: { uid: ak.metadata.uid },
      });
    } catch (err) {
      if ((err as { status?: number }).status === 404) return;
      if ((err as { status?: number }).status === 409) {
        throw new PluginError(`ApiKey "${name}" was replaced by another key of the same name meanwhile; it was not deleted, run the command again`);
      }
      throw err;
    }
  });
}

async function del(inv: Invocation): Promise<number> {
  const { names, all, what } = targets(inv);
  const yes = inv.values.yes === true;
  if (!yes && !process.stdin.isTTY) {
    throw new PluginUsageError(`refusing to delete ${what} without confirmation: stdin is not a terminal, so pass --yes`);
  }
  const s = await inv.session();
  const keys = await keysToDelete(s, names, all);
  if (keys.length === 0) {
    textErr(`No ApiKeys found in namespace ${s.namespace}.\n`);
    return 0;
  }
  if (!yes && !(await confirm(question(s, keys)))) {
    throw new PluginError(`not deleted: ${keys.length === 1 ? `ApiKey "${keys[0]!.metadata.name}" is` : 'the ApiKeys are'} unchanged`);
  }
  for (const ak of keys) {
    await deleteKey(s, ak);
    text(`apikey.apikeys.dev "${ak.metadata.name}" deleted; its Secret "${reportedSecretNameOf(ak)}" is removed by the garbage collector\n`);
  }
  return 0;
}

export const deleteCommand: CommandDef = {
  name: 'delete',
  summary: 'delete API keys and their Secrets',
  description: [
    'Delete API keys: the named ones, or with --all every key of the namespace. Their Secrets are deleted',
    'with them, and the token server stops issuing tokens for them at once. Every named key must exist,',
    'or nothing is deleted. Asks once for confirmation on a terminal; elsewhere (scripts, CI) it needs --yes.',
  ].join('\n'),
  usage: 'delete (NAME... | --all) [--yes] [flags]',
  positionals: { min: 0, max: Number.POSITIVE_INFINITY, names: ['NAME'] },
  flags: [
    { name: 'all', type: 'boolean', help: 'every ApiKey of the namespace' },
    { name: 'yes', short: 'y', type: 'boolean', help: 'do not ask for confirmation' },
  ],
  examples: [
    'kubectl apikey delete ci-deployer',
    'kubectl apikey delete ci-deployer dashboard -n team-a --yes',
    'kubectl apikey delete --all -n team-a',
  ],
  run: del,
};
