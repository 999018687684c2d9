/**
 * Shell completion for `kubectl apikey <TAB>`. kubectl (1.26 and later) runs
 * the executable `kubectl_complete-apikey` from PATH with the words after
 * `apikey`, the last one being the word to complete (often empty), and reads
 * cobra's __complete answer: one candidate per line (optionally
 * "candidate<TAB>description"), then `:<directive>`. This completes the
 * command names, each command's flags, the values of -o, --permissions and
 * --dry-run, and from the cluster (with the words' own -n, --kubeconfig and
 * --context) the key names, Deployment names, namespaces and contexts.
 */
import { CONNECTION_FLAGS, flagsOf, LIST_FLAGS, type CommandDef, type FlagDef } from './command.ts';
import { COMMANDS } from './index.ts';
import type { ConnectionFlags } from './session.ts';
import { escapeTerminal } from './terminal.ts';

/** cobra's ShellCompDirective bits. */
export const DIRECTIVE = { default: 0, error: 1, noSpace: 2, noFileComp: 4 } as const;

export interface Completion { candidates: string[]; directive: number }

/** Names the cluster (or the kubeconfig) knows; each answers [] when it cannot be read. */
export interface NameSource {
  apiKeys(): Promise<string[]>;
  deployments(): Promise<string[]>;
  namespaces(): Promise<string[]>;
  contexts(): Promise<string[]>;
}

/** Flags kubectl users put before the command word (`kubectl apikey -n team-a list`). */
const BEFORE_COMMAND: FlagDef[] = [
  ...CONNECTION_FLAGS, { name: 'output', short: 'o', type: 'string', help: '' }, ...LIST_FLAGS,
];

/** Commands whose positional arguments are ApiKey names (delete takes several). */
const KEY_ARGUMENTS = new Set(['describe', 'rotate', 'revoke', 'set-networks', 'delete', 'token']);

interface Scanned {
  cmd: CommandDef | undefined;
  unknownCommand: boolean;
  positionals: string[];
  connection: ConnectionFlags;
  /** A string flag whose value is the word being completed. */
  pending: FlagDef | undefined;
}

function findFlag(defs: FlagDef[], word: string): { def: FlagDef | undefined; inlineValue: string | undefined } {
  const eq = word.indexOf('=');
  const key = eq >= 0 ? word.slice(0, eq) : word;
  const inlineValue = eq >= 0 ? word.slice(eq + 1) : undefined;
  const def = key.startsWith('--')
    ? defs.find((d) => d.name === key.slice(2) || (d.defaultTrue && `no-${d.name}` === key.slice(2)))
    : defs.find((d) => d.short !== undefined && `-${d.short}` === key);
  return { def, inlineValue };
}

/** Reads the complete words: the command, its positionals, the connection flags, and a flag still waiting for its value. */
function scan(words: string[]): Scanned {
  const s: Scanned = { cmd: undefined, unknownCommand: false, positionals: [], connection: {}, pending: undefined };
  const record = (def: FlagDef, value: string) => {
    if (def.name === 'namespace' || def.name === 'kubeconfig' || def.name === 'context') s.connection[def.name] = value;
  };
  for (const w of words) {
    if (s.pending) { record(s.pending, w); s.pending = undefined; continue; }
    if (w.startsWith('-') && w !== '-') {
      const { def, inlineValue } = findFlag(s.cmd ? flagsOf(s.cmd) : BEFORE_COMMAND, w);
      if (def?.type === 'string') {
        if (inlineValue === undefined) s.pending = def;
        else record(def, inlineValue);
      }
      continue;
    }
    if (!s.cmd && !s.unknownCommand) {
      s.cmd = COMMANDS.find((c) => c.name === w);
      s.unknownCommand = s.cmd === undefined;
    } else {
      s.positionals.push(w);
    }
  }
  return s;
}

const startingWith = (prefix: string, values: string[]) => [...new Set(values)].filter((v) => v.startsWith(prefix));

async function flagValues(def: FlagDef, s: Scanned, names: NameSource, prefix: string): Promise<Completion> {
  const noFiles = (values: string[], directive: number = DIRECTIVE.noFileComp) => ({ candidates: startingWith(prefix, values), directive });
  switch (def.name) {
    case 'namespace': return noFiles(await names.namespaces());
    case 'context': return noFiles(await names.contexts());
    case 'kubeconfig': return { candidates: [], directive: DIRECTIVE.default };
    case 'deployment': return noFiles(await names.deployments());
    case 'output': {
      const offered = noFiles((s.cmd?.output ?? ['json', 'yaml']).map((k) => (k === 'jsonpath' ? 'jsonpath=' : k)));
      // When only jsonpath= is left, its template follows right after it: no space.
      const onlyTemplate = offered.candidates.length === 1 && offered.candidates[0] === 'jsonpath=';
      return onlyTemplate ? { ...offered, directive: DIRECTIVE.noFileComp | DIRECTIVE.noSpace } : offered;
    }
    case 'permissions': return noFiles(['deploy', 'read', 'deploy,read']);
    case 'dry-run': return noFiles(['client', 'none']);
    default: return { candidates: [], directive: DIRECTIVE.noFileComp };
  }
}

function flagNames(defs: FlagDef[], prefix: string): string[] {
  const names = defs.flatMap((d) => [
    `--${d.name}\t${d.help}`,
    ...(d.defaultTrue ? [`--no-${d.name}\t${d.help}`] : []),
    ...(d.short && prefix === '-' ? [`-${d.short}\t${d.help}`] : []),
  ]);
  return names.filter((n) => n.startsWith(prefix));
}

/** The completion of the last of `words` (the words after `kubectl apikey`). */
export async function complete(words: string[], names: (c: ConnectionFlags) => NameSource): Promise<Completion> {
  const toComplete = words.length > 0 ? words[words.length - 1]! : '';
  const s = scan(words.slice(0, -1));
  const defs = s.cmd ? flagsOf(s.cmd) : BEFORE_COMMAND;
  if (s.pending) return flagValues(s.pending, s, names(s.connection), toComplete);
  if (toComplete.startsWith('-')) {
    const { def, inlineValue } = findFlag(defs, toComplete);
    if (def?.type === 'string' && inlineValue !== undefined) {
      const head = toComplete.slice(0, toComplete.length - inlineValue.length);
      const values = await flagValues(def, s, names(s.connection), inlineValue);
      return { ...values, candidates: values.candidates.map((v) => `${head}${v}`) };
    }
    return { candidates: flagNames(defs, toComplete), directive: DIRECTIVE.noFileComp };
  }
  if (s.unknownCommand) return { candidates: [], directive: DIRECTIVE.noFileComp };
  if (!s.cmd) {
    return { candidates: COMMANDS.filter((c) => c.name.startsWith(toComplete)).map((c) => `${c.name}\t${c.summary}`), directive: DIRECTIVE.noFileComp };
  }
  if (!KEY_ARGUMENTS.has(s.cmd.name) || s.positionals.length >= s.cmd.positionals.max) {
    return { candidates: [], directive: DIRECTIVE.noFileComp };
  }
  const keys = await names(s.connection).apiKeys();
  return { candidates: startingWith(toComplete, keys.filter((k) => !s.positionals.includes(k))), directive: DIRECTIVE.noFileComp };
}

/**
 * cobra's answer: the candidates, one a line, then `:<directive>`. A
 * candidate holding a control character (a context name from a kubeconfig;
 * Kubernetes names cannot) is left out: the shell would print it or put it on
 * the command line, and an escaped one would complete to a wrong name.
 */
export function formatCompletion(c: Completion): string {
  // A tab separates a candidate from its description (cobra's protocol).
  const inert = (x: string) => x.split('\t').every((part) => escapeTerminal(part) === part);
  return [...c.candidates.filter(inert), `:${c.directive}`].join('\n') + '\n';
}
