/**
 * How a plugin command is declared (its flags, positionals, examples) and
 * how its command line is parsed and its help rendered. kubectl's own flags
 * (-n, --kubeconfig, --context, -h, and -o / -A where they apply) are added
 * to every command so that `kubectl apikey list -n team-a -o yaml` reads
 * like kubectl.
 */
import { parseArgs } from 'node:util';
import { formatDuration, parseDuration } from '../../shared/duration.ts';
import { PluginUsageError } from '../../client/errors.ts';
import type { OutputFormat, OutputKind } from './output.ts';
import type { Session } from './session.ts';

export interface FlagDef {
  name: string;
  short?: string;
  type: 'string' | 'boolean';
  /** Placeholder of the value in help: `--deployment NAME`. */
  value?: string;
  help: string;
  /** Boolean flags that default to true and can be turned off with --no-NAME. */
  defaultTrue?: boolean;
}

export type Values = Record<string, string | boolean | undefined>;

export interface Invocation {
  positionals: string[];
  values: Values;
  /** Opens the connection to the cluster (lazily, so usage errors come first). */
  session(): Promise<Session>;
  output: OutputFormat;
  allNamespaces: boolean;
}

export interface CommandDef {
  name: string;
  /** One line, for the command list. */
  summary: string;
  /** Paragraph(s) under the usage line. */
  description: string;
  usage: string;
  /** Positional arguments: how many are allowed, and their names for error messages. */
  positionals: { min: number; max: number; names: string[] };
  flags: FlagDef[];
  /** Output formats besides the default (-o). */
  output?: readonly OutputKind[];
  /** Whether -A/--all-namespaces applies. */
  allNamespaces?: boolean;
  examples: string[];
  run(inv: Invocation): Promise<number>;
}

export const CONNECTION_FLAGS: FlagDef[] = [
  { name: 'namespace', short: 'n', type: 'string', value: 'NS', help: "namespace; default: the kubeconfig context's, else default" },
  { name: 'kubeconfig', type: 'string', value: 'FILE', help: 'kubeconfig file; default: KUBECONFIG, else ~/.kube/config' },
  { name: 'context', type: 'string', value: 'NAME', help: 'kubeconfig context to use; default: the current context' },
  { name: 'help', short: 'h', type: 'boolean', help: 'show this help' },
];

const OUTPUT_FLAG = (formats: readonly OutputKind[]): FlagDef => {
  const forms = formats.map((f) => (f === 'jsonpath' ? 'jsonpath=TEMPLATE' : f));
  return { name: 'output', short: 'o', type: 'string', value: forms.join('|'), help: `print ${forms.join(' or ')} instead of the table` };
};

/** kubectl get's flags of the list commands: --selector and --no-headers. */
export const LIST_FLAGS: FlagDef[] = [
  { name: 'selector', short: 'l', type: 'string', value: 'SELECTOR', help: 'only objects with these labels, e.g. -l team=ci,env!=prod' },
  { name: 'headers', type: 'boolean', defaultTrue: true, help: 'print the table\'s header line (default); --no-headers omits it' },
];
const ALL_NAMESPACES_FLAG: FlagDef = { name: 'all-namespaces', short: 'A', type: 'boolean', help: 'across every namespace' };

/** Every flag a command accepts: its own, then -o/-A where they apply, then kubectl's connection flags. */
export function flagsOf(cmd: CommandDef): FlagDef[] {
  return [
    ...cmd.flags,
    ...(cmd.output ? [OUTPUT_FLAG(cmd.output)] : []),
    ...(cmd.allNamespaces ? [ALL_NAMESPACES_FLAG] : []),
    ...CONNECTION_FLAGS,
  ];
}

/** Flags that take a value, so the command word can be found even after `-n NS`. */
export const VALUE_FLAGS = new Set(['-n', '--namespace', '--kubeconfig', '--context', '-o', '--output', '-l', '--selector']);

/** Parses a command's arguments; every mistake is a PluginUsageError naming the flag. */
export function parseCommandLine(cmd: CommandDef, args: string[]): { positionals: string[]; values: Values } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const f of flagsOf(cmd)) options[f.name] = f.short ? { type: f.type, short: f.short } : { type: f.type };
  let parsed: { positionals: string[]; values: Values };
  try {
    const r = parseArgs({ args, options, allowPositionals: true, allowNegative: true, strict: true });
    parsed = { positionals: r.positionals, values: r.values };
  } catch (err) {
    throw new PluginUsageError(`${parseArgsMessage(err as Error & { code?: string })} (see: kubectl apikey ${cmd.name} --help)`);
  }
  if (parsed.values.help) return parsed;
  for (const f of flagsOf(cmd)) {
    const v = parsed.values[f.name];
    if (f.type === 'boolean' && v === false && !f.defaultTrue) {
      throw new PluginUsageError(`unknown flag --no-${f.name} (see: kubectl apikey ${cmd.name} --help)`);
    }
    if (f.type === 'string' && v === '') throw new PluginUsageError(`--${f.name} needs a value`);
  }
  const n = parsed.positionals.length;
  if (n < cmd.positionals.min) {
    throw new PluginUsageError(`${cmd.name} needs ${cmd.positionals.names.slice(n, cmd.positionals.min).join(' ')} (usage: kubectl apikey ${cmd.usage})`);
  }
  if (n > cmd.positionals.max) {
    throw new PluginUsageError(`unexpected argument "${parsed.positionals[cmd.positionals.max]}" (usage: kubectl apikey ${cmd.usage})`);
  }
  return parsed;
}

/** parseArgs' messages, without their advice about "--" which does not apply here. */
function parseArgsMessage(err: Error & { code?: string }): string {
  const m = err.message;
  const unknown = /^Unknown option '([^']+)'/.exec(m);
  if (unknown) return `unknown flag ${unknown[1]}`;
  const missing = /^Option '(?:-\w, )?(--[\w-]+)[^']*' argument missing/.exec(m);
  if (missing) return `flag ${missing[1]} needs a value`;
  const bool = /^Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(m);
  if (bool) return `flag ${bool[1]} takes no value`;
  return m.split('. To specify')[0]!;
}

export function renderHelp(cmd: CommandDef): string {
  const flagLines = flagsOf(cmd).map((f) => {
    const name = `${f.short ? `-${f.short}, ` : '    '}--${f.type === 'boolean' && f.defaultTrue ? `[no-]${f.name}` : f.name}${f.value ? ` ${f.value}` : ''}`;
    return `  ${name.padEnd(34)}${f.help}`;
  });
  return [
    cmd.description, '',
    'Usage:', `  kubectl apikey ${cmd.usage}`, '',
    'Examples:', ...cmd.examples.map((e) => (e === '' ? '' : `  ${e}`)), '',
    'Flags:', ...flagLines, '',
  ].join('\n');
}

export function stringFlag(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A duration flag in the CRDs' form (24h, 90m, 1h30m, 30s), checked locally so the error names the flag. */
export function durationFlag(values: Values, name: string, minMs = 0): { text: string; ms: number } | undefined {
  const text = stringFlag(values, name);
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined) throw new PluginUsageError(`--${name} must be a duration such as 720h, 90m, 1h30m or 30s (got "${text}")`);
  if (ms < minMs) throw new PluginUsageError(`--${name} must be at least ${formatDuration(minMs)}`);
  return { text, ms };
}
