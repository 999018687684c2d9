/**
 * The kubectl plugin `kubectl apikey ...` (also `apikey-operator list`, and
 * so on): finds the command word among kubectl's flags, parses the command's
 * flags, runs it, and turns every failure into one line on stderr with exit
 * code 1 (failed) or 2 (wrong command line). Never a stack trace.
 *
 * @example
 *   process.exitCode = await runPlugin(process.argv.slice(2));
 */
import { parseCommandLine, renderHelp, stringFlag, VALUE_FLAGS, type CommandDef, type Invocation } from './command.ts';
import { consoleCommandDef } from './commands/console.ts';
import { createCommand } from './commands/create.ts';
import { deleteCommand } from './commands/delete.ts';
import { deploymentsCommand } from './commands/deployments.ts';
import { describeCommand } from './commands/describe.ts';
import { listCommand } from './commands/list.ts';
import { migrateCommand } from './commands/migrate.ts';
import { rotateCommand } from './commands/rotate.ts';
import { tokenCommand } from './commands/token.ts';
import { versionCommand } from './commands/version.ts';
import { EXIT_FAILURE, EXIT_USAGE, oneLine, PluginError, PluginUsageError } from '../../client/errors.ts';
import { outputFormat } from './output.ts';
import type { Session } from './session.ts';
import { escapeTerminal, text, textErr } from './terminal.ts';

export const COMMANDS: readonly CommandDef[] = [
  createCommand, listCommand, describeCommand, rotateCommand, deleteCommand, tokenCommand, deploymentsCommand, consoleCommandDef, migrateCommand, versionCommand,
];

export function pluginHelp(): string {
  return [
    'Manage API keys of Deployments (apikeys.dev) and get access tokens: a kubectl plugin of apikey-operator.',
    '',
    'Usage:',
    '  kubectl apikey COMMAND [flags]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(14)}${c.summary}`),
    '',
    'Examples:',
    '  kubectl apikey deployments',
    '  kubectl apikey create ci-deployer --deployment airflow-prod --description "GitHub Actions deploy job"',
    '  kubectl apikey list -A',
    '  kubectl apikey token ci-deployer --token-url http://localhost:8080/oauth/token',
    '  kubectl apikey console',
    '',
    "Every command takes kubectl's -n/--namespace, --kubeconfig and --context.",
    "Run 'kubectl apikey COMMAND --help' for a command's flags and examples.",
    '',
  ].join('\n');
}

/** The command word: the first argument that is neither a flag nor a flag's value. */
export function splitCommand(argv: string[]): { word: string | undefined; rest: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (VALUE_FLAGS.has(a)) i++;
      continue;
    }
    return { word: a, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { word: undefined, rest: argv };
}

async function dispatch(argv: string[]): Promise<number> {
  const { word, rest } = splitCommand(argv);
  if (word === undefined || word === 'help') {
    const topic = word === 'help' ? splitCommand(rest).word : undefined;
    const cmd = COMMANDS.find((c) => c.name === topic);
    if (cmd) { text(renderHelp(cmd)); return 0; }
    if (topic !== undefined) throw new PluginUsageError(`unknown command "${topic}"; run: kubectl apikey --help`);
    const asked = word === 'help' || rest.includes('-h') || rest.includes('--help');
    text(pluginHelp(), asked ? process.stdout : process.stderr);
    return asked ? 0 : EXIT_USAGE;
  }
  const cmd = COMMANDS.find((c) => c.name === word);
  if (!cmd) throw new PluginUsageError(`unknown command "${word}"; the commands are ${COMMANDS.map((c) => c.name).join(', ')} (see: kubectl apikey --help)`);
  const { positionals, values } = parseCommandLine(cmd, rest);
  if (values.help) { text(renderHelp(cmd)); return 0; }
  const output = outputFormat(stringFlag(values, 'output'), cmd.output);
  let session: Session | undefined;
  const inv: Invocation = {
    positionals,
    values,
    output,
    // Parsing is strict: only a command that takes -A has the value.
    allNamespaces: values['all-namespaces'] === true,
    // Loaded on first use: the Kubernetes client takes a while to load, and help and usage errors need none of it.
    session: async () => {
      if (!session) {
        const { Session } = await import('./session.ts');
        session = new Session({
          kubeconfig: stringFlag(values, 'kubeconfig'), context: stringFlag(values, 'context'), namespace: stringFlag(values, 'namespace'),
        });
      }
      return session;
    },
  };
  return cmd.run(inv);
}

/** Runs the plugin; resolves to the exit code, having printed any error as one line on stderr. */
export async function runPlugin(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (err) {
    if (err instanceof PluginError) {
      textErr(`error: ${escapeTerminal(err.message)}\n`);
      return err.exitCode;
    }
    // Not expected: still one line, never a stack trace (APIKEY_OPERATOR_DEBUG=1 shows it).
    if (process.env.APIKEY_OPERATOR_DEBUG) textErr(`${(err as Error).stack}\n`);
    textErr(`error: ${escapeTerminal(oneLine((err as Error).message ?? String(err)))}\n`);
    return EXIT_FAILURE;
  }
}
