/**
 * The test cluster's long-running processes: each is detached (its own session
 * and process group) so that `cluster:up` can return while it keeps running,
 * and recorded with its pid and command line so that `cluster:down` stops
 * exactly what was started and never a process that merely reuses a pid.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessRecord {
  name: string;
  pid: number;
  binary: string;
  args: string[];
  log: string;
  /** A command the binary was started through (nsenter into the node's namespaces), if any. */
  via?: string[];
  env?: Record<string, string>;
}

/** The first word of a process's command line, or undefined when it is gone or a zombie. */
function runningBinary(pid: number): string | undefined {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' ? undefined : cmd;
  } catch {
    return undefined;
  }
}

export function isRunning(p: Pick<ProcessRecord, 'pid' | 'binary'>): boolean {
  // Compare the command line so that a recycled pid is never signalled.
  return runningBinary(p.pid) === p.binary;
}

/**
 * Starts `binary` detached, its output appended to DIR/NAME.log. With `via`,
 * the process starts as that command, which execs the binary (keeping the
 * pid); this returns once it has.
 */
export async function launch(dir: string, name: string, binary: string, args: string[],
  o: { via?: string[]; env?: Record<string, string> } = {}): Promise<ProcessRecord> {
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, 'a');
  const [command = binary, ...commandArgs] = [...o.via ?? [], binary, ...args];
  const child = spawn(command, commandArgs, {
    detached: true, stdio: ['ignore', fd, fd], ...(o.env ? { env: { ...process.env, ...o.env } } : {}),
  });
  closeSync(fd);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  const rec: ProcessRecord = { name, pid: child.pid, binary, args, log, ...(o.via ? { via: o.via } : {}), ...(o.env ? { env: o.env } : {}) };
  if (o.via) {
    const deadline = Date.now() + 10_000;
    while (!isRunning(rec)) {
      if (runningBinary(rec.pid) === undefined || Date.now() > deadline) {
        throw new Error(`${name} did not start through ${o.via[0] ?? ''}:\n${tailOf(log)}`);
      }
      await sleep(10);
    }
  }
  return rec;
}

/** Signals the process and its process group (children such as a relay's connections go with it). */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try { process.kill(pid, sig); } catch { /* already gone */ }
  }
}

export async function stopProcess(p: ProcessRecord, graceMs = 10_000): Promise<void> {
  if (!isRunning(p)) return;
  signal(p.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isRunning(p) && Date.now() < deadline) await sleep(50);
  if (isRunning(p)) {
    signal(p.pid, 'SIGKILL');
    while (isRunning(p)) await sleep(20);
  }
}

export function tailOf(file: string, lines = 30): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Polls `check` until it holds, failing early with the logs of any of `watched` that exits. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, watched: ProcessRecord[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const p of watched) {
      if (!isRunning(p)) throw new Error(`${p.name} exited while waiting for ${what}:\n${tailOf(p.log)}`);
    }
    try {
      if (await check()) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}:\n${watched.map((p) => `--- ${p.name}\n${tailOf(p.log)}`).join('\n')}`);
    }
    await sleep(100);
  }
}
