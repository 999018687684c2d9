/**
 * Runs a program to its end and hands back what it printed and how it exited (kubectl, helm, the
 * kubectl plugin, a shell script): a failed run is a result for the test to check, not a throw.
 */
import { spawn } from 'node:child_process';

export interface Run { code: number; stdout: string; stderr: string }

export interface RunOptions {
  /** The program's whole environment (undefined values leave a variable out); this process's by default. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Written to stdin. Either way stdin is a pipe that is then closed: never a terminal, never waiting. */
  input?: string;
  /** SIGKILL after this long, for programs that might wait forever. */
  timeoutMs?: number;
}

export function run(file: string, args: string[], opts: RunOptions = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let spawnError = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    // A program may exit without reading its input; that is its answer, not the test's error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input);
    const killer = opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (err) => {
      // It never started (ENOENT, EACCES); 'close' follows.
      spawnError = true;
      stderr += `${err.message}\n`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code: spawnError ? 1 : code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}
