/**
 * Runs the console until SIGINT or SIGTERM: listens, prints the sign-in URL
 * on a line of its own on stdout, opens a browser where one can be found
 * (never failing when none can), and closes its server on the way out.
 *
 * The browser is never given the sign-in URL in its command line, where any
 * user of the host can read it (ps, /proc/PID/cmdline) for as long as the
 * browser runs: it is given the path of a file that moves on to the URL, in
 * a folder of its own that only this user may enter (mode 0700, the file
 * 0600; in XDG_RUNTIME_DIR when there is one), as Jupyter does. The file is
 * deleted once the code is used, and when the console stops. The URL is still
 * printed on stdout: that is the person's own terminal, and the way to sign
 * in when no browser can be opened here.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../shared/log.ts';
import { html } from './html.ts';
import type { SignIn } from './identity.ts';
import { createConsoleServer } from './server.ts';
import type { Sessions } from './sessions.ts';

export interface RunConsoleOptions {
  signIn: SignIn & { listening?(host: string, port: number): void; signInUrl?(): string; codeUsed?: Promise<void> };
  host: string;
  port: number;
  tokenUrl?: string;
  open: boolean;
  log?: Logger;
  secureCookies?: boolean;
  sessionTtlMs?: number;
  sessions?: Sessions;
  /** Resolves when the console should stop; default: SIGINT or SIGTERM. */
  until?: Promise<unknown>;
}

/** Opens `target` (a file's URL) with the platform's opener, if there is one; failures are ignored. */
export function openBrowser(target: string): void {
  const opener = process.platform === 'darwin' ? ['open', target] : process.platform === 'win32' ? ['cmd', '/c', 'start', '""', target] : ['xdg-open', target];
  try {
    const child = spawn(opener[0]!, opener.slice(1), { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch { /* no browser here: the URL is printed */ }
}

/** A private folder for the file: the user's runtime folder (0700, theirs alone) when there is one, else the temporary folder. */
function privateParent(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  try {
    if (runtime && statSync(runtime).isDirectory()) return runtime;
  } catch { /* gone: the temporary folder */ }
  return tmpdir();
}

/**
 * Writes a page that moves on to `url` into a new folder only this user may
 * enter, and returns the file's URL (which holds no secret) and how to delete it.
 */
export function signInFile(url: string): { fileUrl: string; remove: () => void } {
  const dir = mkdtempSync(join(privateParent(), 'apikey-console-'));
  const file = join(dir, 'sign-in.html');
  writeFileSync(file, '<!doctype html>\n' + html`<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url=${url}">
<title>Signing in to the apikey-operator console</title></head>
<body><p><a href="${url}">Continue to the console</a></p></body></html>
`.text, { mode: 0o600, flag: 'wx' });
  return { fileUrl: pathToFileURL(file).href, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function runConsole(o: RunConsoleOptions): Promise<void> {
  const { server } = createConsoleServer({
    signIn: o.signIn, tokenUrl: o.tokenUrl, log: o.log, secureCookies: o.secureCookies, sessionTtlMs: o.sessionTtlMs, ...o.sessions ? { sessions: o.sessions } : {},
  });
  server.listen(o.port, o.host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  o.signIn.listening?.(o.host, port);
  let cleanup = (): void => undefined;
  if (o.signIn.signInUrl) {
    const url = o.signIn.signInUrl();
    process.stderr.write('apikey-operator console: open this URL in your browser to sign in (it works once); Ctrl-C stops the console.\n');
    process.stdout.write(`${url}\n`);
    if (o.open) {
      try {
        const f = signInFile(url);
        cleanup = f.remove;
        void o.signIn.codeUsed?.then(f.remove);
        openBrowser(f.fileUrl);
      } catch (err) {
        process.stderr.write(`apikey-operator console: could not hand the sign-in URL to a browser (${(err as NodeJS.ErrnoException).code ?? 'error'}); open it yourself.\n`);
      }
    }
  } else {
    process.stderr.write(`apikey-operator console listening on ${o.host}:${port}\n`);
  }
  const stop = o.until ?? new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stop;
  cleanup();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}
