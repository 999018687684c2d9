/**
 * A progress indication while the plugin waits for the operator: a spinner
 * with the elapsed time on a terminal, a line followed by a dot a second
 * otherwise (CI logs, pipes). Always on stderr, so stdout carries only the
 * result (`$(kubectl apikey token ci)` stays clean). Its timer never keeps
 * the process alive.
 */
import { escapeTerminal } from './terminal.ts';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface Progress {
  /** Replaces the text (a new line when not on a terminal). */
  update(text: string): void;
  /** Stops the indication; `message`, when given, is left on its own line. */
  done(message?: string): void;
}

export interface ProgressStream {
  isTTY?: boolean;
  write(s: string): boolean;
}

export function startProgress(text: string, stream: ProgressStream = process.stderr): Progress {
  const started = Date.now();
  // The text may name cluster objects: escaped (terminal.ts), as everything the plugin prints.
  let current = escapeTerminal(text);
  let stopped = false;
  const tty = stream.isTTY === true;
  let frame = 0;
  const render = () => {
    const secs = Math.floor((Date.now() - started) / 1000);
    stream.write(`\r\x1b[K${FRAMES[frame++ % FRAMES.length]} ${current} ${secs}s`);
  };
  if (tty) render(); else stream.write(`${current} `);
  const timer = setInterval(() => { if (tty) render(); else stream.write('.'); }, tty ? 100 : 1000);
  timer.unref();
  return {
    update(text: string) {
      const next = escapeTerminal(text);
      if (stopped || next === current) return;
      current = next;
      if (tty) render(); else stream.write(`\n${current} `);
    },
    done(message?: string) {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      stream.write(tty ? '\r\x1b[K' : '\n');
      if (message) stream.write(`${escapeTerminal(message)}\n`);
    },
  };
}

/**
 * Calls `check` every `everyMs` until it returns a value or `timeoutMs` has
 * passed (then undefined). A throw from `check` ends the wait at once.
 */
export async function pollUntil<T>(timeoutMs: number, check: () => Promise<T | undefined>, everyMs = 250): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() >= end) return undefined;
    await new Promise((r) => setTimeout(r, Math.min(everyMs, Math.max(0, end - Date.now()))));
  }
}
