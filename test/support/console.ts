/**
 * The console as a person runs it: `kubectl apikey console` (or
 * `apikey-operator console`) as a process with their kubeconfig, and the
 * sign-in URL it prints on a line of its own on stdout.
 */
import { MAIN, PLUGIN, startProcess, type RunningProcess } from './processes.ts';
import { waitFor } from './wait.ts';

export interface ConsoleProcess extends RunningProcess {
  /** The one-time sign-in URL it printed. */
  signInUrl: string;
  /** http://127.0.0.1:PORT */
  base: string;
}

const SIGN_IN_LINE = /^(http:\/\/127\.0\.0\.1:\d+)\/sign-in\?code=[\w-]+$/m;

export interface ConsoleOptions {
  kubeconfig: string;
  program?: 'plugin' | 'apikey-operator';
  args?: string[];
  /** The plugin opens a browser unless --no-open; the tests pass it unless this is true. */
  open?: boolean;
  env?: Record<string, string | undefined>;
}

export async function startConsole(opts: ConsoleOptions): Promise<ConsoleProcess> {
  const argv = opts.program === 'apikey-operator'
    ? [MAIN, 'console', '--kubeconfig', opts.kubeconfig, ...(opts.args ?? [])]
    : [PLUGIN, 'console', ...(opts.open ? [] : ['--no-open']), '--kubeconfig', opts.kubeconfig, ...(opts.args ?? [])];
  const p = startProcess('console', argv, { KUBECONFIG: undefined, APIKEY_OPERATOR_TOKEN_URL: undefined, ...opts.env });
  let stdout = '';
  p.child.stdout!.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
  try {
    const m = await waitFor('the console\'s sign-in URL', () => {
      if (!p.isRunning()) return Promise.reject(new Error(`the console exited:\n${p.logs().slice(-2000)}`));
      return Promise.resolve(SIGN_IN_LINE.exec(stdout) ?? undefined);
    }, 30_000, 50);
    return Object.assign(p, { signInUrl: m[0], base: m[1]! });
  } catch (err) {
    await p.kill();
    throw err;
  }
}
