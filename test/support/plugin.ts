/**
 * Runs the kubectl plugin as a process, the way kubectl runs it: with a kubeconfig and a
 * namespace on its command line, and neither KUBECONFIG nor a token URL from this environment
 * unless given; either with stdin a pipe (not a terminal, as in CI) or on a pseudo-terminal.
 */
import { clusterState } from './cluster.ts';
import { ROOT } from './paths.ts';
import { PLUGIN } from './processes.ts';
import { run, type Run } from './run.ts';

export interface PluginOptions {
  /** The admin's by default; false: no --kubeconfig (the plugin reads KUBECONFIG from `env`). */
  kubeconfig?: string | false;
  /** -n NAMESPACE, or none. */
  namespace: string | false;
  env?: Record<string, string>;
  /** The program to run: the plugin by default; the apikey-operator command has the same commands. */
  program?: string;
}

const connection = (opts: PluginOptions) => [
  ...(opts.kubeconfig === false ? [] : ['--kubeconfig', opts.kubeconfig ?? clusterState().kubeconfig]),
  ...(opts.namespace === false ? [] : ['-n', opts.namespace]),
];
const environment = (opts: PluginOptions) =>
  ({ ...process.env, APIKEY_OPERATOR_TOKEN_URL: undefined, KUBECONFIG: undefined, ...opts.env });

/** `kubectl-apikey ARGS --kubeconfig K [-n NS]` with stdin a closed pipe. */
export function runPlugin(args: string[], opts: PluginOptions): Promise<Run> {
  return run(process.execPath, [opts.program ?? PLUGIN, ...args, ...connection(opts)], {
    cwd: ROOT, env: environment(opts), timeoutMs: 100_000,
  });
}

/**
 * The plugin on a terminal: util-linux `script` gives it a pseudo-terminal as stdin and stdout,
 * and forwards `input` as if typed. What it printed is all on stdout.
 */
export function runPluginOnTerminal(args: string[], input: string, opts: PluginOptions): Promise<Run> {
  const quote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
  const command = [process.execPath, opts.program ?? PLUGIN, ...args, ...connection(opts)].map(quote).join(' ');
  return run('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: environment(opts), input, timeoutMs: 60_000 });
}
