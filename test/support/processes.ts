/**
 * Runs the operator's programs as real processes (Node running src/cli/main.ts
 * directly, types stripped), each with its own kubeconfig, logs captured to
 * files under the run's log directory so that the global teardown can scan
 * every line for secrets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inject } from 'vitest';
import { freePort } from '../cluster/controlplane.ts';
import { ROOT } from './paths.ts';

export const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
export const PLUGIN = join(ROOT, 'src', 'cli', 'kubectl-apikey.ts');

export function logDir(): string {
  const dir = join(inject('clusterDir'), 'logs');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Remembers a secret the suite saw, so the teardown can prove no log line holds it. */
export function recordSecret(secret: string): void {
  appendFileSync(join(logDir(), 'secrets.seen'), `${secret}\n`);
}

export interface RunningProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string;
  port?: number;
  healthPort?: number;
  exited: Promise<number | null>;
  isRunning(): boolean;
  logs(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
}

let counter = 0;
const live = new Set<ChildProcess>();
// A safety net: whatever a failed test left running dies with its worker.
process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });

/** Runs `command` (this Node by default) with `args`; its output goes to a log file the teardown scans. */
export function startProcess(
  name: string, args: string[], env: Record<string, string | undefined> = {}, command = process.execPath,
): RunningProcess {
  const logFile = join(logDir(), `${name}-${process.pid}-${++counter}.log`);
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, APIKEY_OPERATOR_LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  let running = true;
  live.add(child);
  child.on('exit', () => {
    running = false;
    live.delete(child);
  });
  // Resolves once the process has exited, its output pipes have closed and every line of it is in
  // the log file ('exit' can come before the last output is read), so logs() is complete by then.
  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code, signal) => {
      out.end(() => resolve(code ?? (signal ? 128 : null)));
    });
  });
  const rp: RunningProcess = {
    name,
    child,
    pid: child.pid!,
    logFile,
    exited,
    isRunning: () => running,
    logs: () => { try { return readFileSync(logFile, 'utf8'); } catch { return ''; } },
    async stop(graceMs = 10_000) {
      if (!running) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => { if (running) child.kill('SIGKILL'); }, graceMs);
      await exited;
      clearTimeout(t);
    },
    async kill() {
      if (!running) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  return rp;
}

export async function waitForHttp(url: string, proc: RunningProcess, timeoutMs = 60_000, status = 200): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (!proc.isRunning()) throw new Error(`${proc.name} exited:\n${proc.logs().slice(-4000)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.status === status) return;
    } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${url}:\n${proc.logs().slice(-4000)}`);
    await sleep(100);
  }
}

/** A process that never became ready is killed before the error propagates: tests leak nothing. */
function killAndThrow(p: RunningProcess): (err: unknown) => Promise<never> {
  return async (err) => {
    await p.kill();
    throw err;
  };
}

/** How a test starts one of the programs. */
export interface ProgramOptions {
  kubeconfig: string;
  operatorNamespace: string;
  /** Pass neither --kubeconfig nor --operator-namespace (in-cluster configuration). */
  raw?: boolean;
  args?: string[];
  env?: Record<string, string | undefined>;
  /** Wait for /readyz (caches synced; for the controller, leading if leader election is on). */
  waitReady?: boolean;
}

export type ControllerOptions = ProgramOptions;

/** --kubeconfig and --operator-namespace, unless the program is to find both in its pod. */
const connectionArgs = (opts: ProgramOptions) =>
  (opts.raw ? [] : ['--kubeconfig', opts.kubeconfig, '--operator-namespace', opts.operatorNamespace]);

export async function startController(opts: ControllerOptions): Promise<RunningProcess> {
  const healthPort = await freePort();
  const p = startProcess('controller', [
    MAIN, 'controller', ...connectionArgs(opts),
    '--health-port', String(healthPort), '--token-url', 'http://token.test/oauth/token', '--audiences', 'https://api.example.test',
    ...(opts.args ?? []),
  ], opts.env);
  p.healthPort = healthPort;
  if (opts.waitReady ?? true) await waitForHttp(`http://127.0.0.1:${healthPort}/readyz`, p).catch(killAndThrow(p));
  return p;
}

export type TokenServerProcessOptions = ProgramOptions & {
  /** The loopback address to listen on: 127.0.0.1 (default) or ::1. */
  host?: '127.0.0.1' | '::1';
};

/** A token server process: `url` is its token port, `metricsUrl` the /metrics of its own metrics port. */
export type TokenServerProcess = RunningProcess & { url: string; metricsUrl: string };

export async function startTokenServer(opts: TokenServerProcessOptions): Promise<TokenServerProcess> {
  const port = await freePort();
  const metricsPort = await freePort();
  const host = opts.host ?? '127.0.0.1';
  const base = `http://${host.includes(':') ? `[${host}]` : host}`;
  const url = `${base}:${port}`;
  const p = startProcess('token-server', [
    MAIN, 'token-server', ...connectionArgs(opts),
    '--port', String(port), '--metrics-port', String(metricsPort), '--host', host, '--issuer', url,
    '--audiences', 'https://api.example.test', ...(opts.args ?? []),
  ], opts.env);
  p.port = port;
  if (opts.waitReady ?? true) await waitForHttp(`${url}/readyz`, p).catch(killAndThrow(p));
  return Object.assign(p, { url, metricsUrl: `${base}:${metricsPort}/metrics` });
}
