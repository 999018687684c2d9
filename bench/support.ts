/**
 * What the control-plane benchmarks share: their own control plane, the
 * operator's programs started from source as child processes (every one
 * stopped at the end, whatever happens), bounded concurrency, and reading the
 * programs' metrics and memory.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../src/kube/client.ts';
import { down, freePort, up, type ClusterState } from '../test/cluster/controlplane.ts';
import { CRD_FILES } from '../test/support/paths.ts';

const ROOT = join(import.meta.dirname, '..');
/**
 * The program from source, or as built (`npm run build`), which is what the
 * image runs: Node's type stripping keeps a compiler in memory, some tens of
 * MB of resident memory that production does not have.
 */
const MAIN = { source: join(ROOT, 'src', 'cli', 'main.ts'), built: join(ROOT, 'dist', 'src', 'cli', 'main.js') };

/**
 * The Node.js flags the image starts the programs with: its ENTRYPOINT's
 * arguments between `node` and the script (the V8 heap sizing, Dockerfile).
 */
export function imageNodeFlags(): string[] {
  const entrypoints = [...readFileSync(join(ROOT, 'Dockerfile'), 'utf8').matchAll(/^ENTRYPOINT\s+(\[.*\])\s*$/gm)];
  const argv = JSON.parse(entrypoints.at(-1)?.[1] ?? '[]') as string[];
  const script = argv.indexOf('dist/src/cli/main.js');
  if (argv[0] !== 'node' || script < 0) throw new Error(`the Dockerfile's ENTRYPOINT is not node ... dist/src/cli/main.js: ${JSON.stringify(argv)}`);
  return argv.slice(1, script);
}

/**
 * The Node.js flags for the programs: the image's, or BENCH_PROGRAM_NODE_FLAGS
 * (space-separated, '' for none) to compare others. V8 flags such as
 * --heap-growing-percent are refused in NODE_OPTIONS, so they go here.
 */
export function programNodeFlags(): string[] {
  const flags = process.env.BENCH_PROGRAM_NODE_FLAGS;
  return flags === undefined ? imageNodeFlags() : flags.split(' ').filter((f) => f !== '');
}

/** Pins every thread of process `pid` to `cpus` ("0", "1", "0,1"), with taskset. */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
}

/** Runs `f(0..n-1)`, `concurrency` at a time. */
export async function pool(n: number, concurrency: number, f: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, async () => { while (next < n) await f(next++); }));
}

/** Polls `f` every `everyMs` until it is true; resolves with the milliseconds it took. */
export async function until(what: string, f: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    try { if (await f()) return performance.now() - t0; } catch { /* not yet */ }
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface BenchCluster {
  state: ClusterState;
  client: KubeClient;
  /** The apiserver's own /metrics (Prometheus text). */
  apiserverMetrics(): Promise<string>;
  /** Stops every program started with `start`, then the control plane, and removes its folder. */
  stop(): Promise<void>;
  /** Starts one of the operator's programs from source (`apikey-operator <command> ...args`). */
  start(name: string, command: string, args: string[]): Program;
}

export interface Program {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  /** SIGTERM, then SIGKILL after 10 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/** A control plane of its own with the CRDs installed, in a fresh temporary folder. */
export async function benchCluster(prefix: string, opts: { built?: boolean } = {}): Promise<BenchCluster> {
  const main = opts.built ? MAIN.built : MAIN.source;
  if (!existsSync(main)) throw new Error(`${main} does not exist: npm run build`);
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const programs = new Set<Program>();
  let state: ClusterState;
  try {
    state = await up(dir, { crds: CRD_FILES });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const kc = new KubeConfig();
  kc.loadFromFile(state.kubeconfig);
  const client = new KubeClient(kc);
  // A bench stopped with ^C still stops what it started.
  const onSignal = () => { void stop().finally(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let stopping: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopping ??= (async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await Promise.all([...programs].map((p) => p.stop()));
      await down(dir);
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  }
  return {
    state, client, stop,
    async apiserverMetrics() {
      const { stdout } = await promisify(execFile)(state.binaries.kubectl, ['--kubeconfig', state.kubeconfig, 'get', '--raw', '/metrics'],
        { maxBuffer: 256 << 20 });
      return stdout;
    },
    start(name, command, args) {
      const cpuProf = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
      // BENCH_PROGRAM_NODE_OPTIONS: Node options for the programs only (e.g. --max-old-space-size=96), not for the bench.
      const env = process.env.BENCH_PROGRAM_NODE_OPTIONS === undefined ? process.env : { ...process.env, NODE_OPTIONS: process.env.BENCH_PROGRAM_NODE_OPTIONS };
      const child = spawn(process.execPath, [...programNodeFlags(), ...cpuProf, main, command, ...args], { stdio: 'inherit', env });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const p: Program = {
        name, child, exited,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
            await exited;
            clearTimeout(timer);
          }
          programs.delete(p);
        },
      };
      programs.add(p);
      return p;
    },
  };
}

export interface Controller extends Program {
  /** Base URL of /readyz and /metrics. */
  health: string;
}

/** The controller, on the admin kubeconfig, watching `namespaces`. */
export async function startController(cluster: BenchCluster, opts: { operatorNamespace: string; namespaces: string; workers: string }): Promise<Controller> {
  const port = await freePort();
  const p = cluster.start('controller', 'controller', ['--kubeconfig', cluster.state.kubeconfig, '--operator-namespace', opts.operatorNamespace,
    '--namespaces', opts.namespaces, '--workers', opts.workers, '--health-port', String(port), '--log-level', 'warn']);
  return Object.assign(p, { health: `http://127.0.0.1:${port}` });
}

export interface TokenServer extends Program {
  /** Base URL of the token endpoint and /readyz. */
  url: string;
  /** Base URL of its /metrics (a port of its own, as the image runs it). */
  metrics: string;
}

/** The token server, on the admin kubeconfig, serving keys of `namespaces`. */
export async function startTokenServer(cluster: BenchCluster, opts: { operatorNamespace: string; namespaces: string }): Promise<TokenServer> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${port}`;
  const p = cluster.start('token-server', 'token-server', ['--kubeconfig', cluster.state.kubeconfig, '--operator-namespace', opts.operatorNamespace,
    '--namespaces', opts.namespaces, '--port', String(port), '--metrics-port', String(metricsPort), '--host', '127.0.0.1', '--issuer', url, '--log-level', 'warn']);
  return Object.assign(p, { url, metrics: `http://127.0.0.1:${metricsPort}` });
}

/** True when `base`/readyz answers 200. */
export async function isReady(base: string): Promise<boolean> {
  try { return (await fetch(`${base}/readyz`)).ok; } catch { return false; }
}

export async function metricsOf(base: string): Promise<string> {
  return (await fetch(`${base}/metrics`)).text();
}

/**
 * The samples of the counter or gauge `name`, keyed by their label set as
 * written (`method="GET",code="200"`; '' without labels).
 */
export function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

/** The label `label`'s value in a label set as `samples` keys it. */
export const labelOf = (labels: string, label: string): string | undefined => new RegExp(`(?:^|,)${label}="([^"]*)"`).exec(labels)?.[1];

/** `after - before` for every sample, without the zeros. */
export function delta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out.set(k, d);
  }
  return out;
}

/** True once the controller has reconciled at least `n` ApiKeys and has nothing queued (its metrics; no apiserver request). */
export async function caughtUp(ctl: Controller, n: number): Promise<boolean> {
  const m = await metricsOf(ctl.health);
  const sum = (x: Map<string, number>) => [...x.values()].reduce((a, b) => a + b, 0);
  const reconciled = sum(new Map([...samples(m, 'apikey_operator_reconcile_total')].filter(([k]) => labelOf(k, 'kind') === 'ApiKey')));
  return reconciled >= n && sum(samples(m, 'apikey_operator_workqueue_depth')) === 0;
}

/** Resident memory of a process, from /proc/<pid>/status (VmRSS), in bytes. */
export function rssBytes(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

/** CPU time a process has used so far (user + system, /proc/<pid>/stat), in seconds. */
export function cpuSeconds(pid: number): number {
  // The fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
export const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
