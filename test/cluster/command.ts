/**
 * Runs a tool the test cluster drives (ip, mount, buildah, ctr, ...) and
 * returns its output; a failure carries the command and its own words, since
 * those tools say precisely what went wrong.
 */
import { execFile } from 'node:child_process';

export interface CommandOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export class CommandError extends Error {
  readonly stderr: string;
  constructor(command: string, stderr: string, exitCode: number | string | undefined) {
    super(`${command} failed (${exitCode ?? 'no exit code'}):\n${stderr.trim().split('\n').slice(-20).join('\n')}`);
    this.stderr = stderr;
  }
}

export function run(command: string, args: string[], opts: CommandOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, {
      cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 0,
      maxBuffer: 256 << 20, encoding: 'utf8',
    }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as { code?: number | string }).code;
        reject(new CommandError([command, ...args].join(' ').slice(0, 300), `${stderr}${err.killed ? '\n(timed out)' : ''}`, code));
      } else {
        resolve(stdout);
      }
    });
  });
}
