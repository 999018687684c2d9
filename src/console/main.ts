/**
 * Runs the console until SIGINT or SIGTERM: listens, prints the sign-in URL
 * on a line of its own on stdout, opens a browser where one can be found
 * (never failing when none can), and closes its server on the way out.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/log.ts';
import type { SignIn } from './identity.ts';
import { createConsoleServer } from './server.ts';

export interface RunConsoleOptions {
  signIn: SignIn & { listening?(host: string, port: number): void; signInUrl?(): string };
  host: string;
  port: number;
  tokenUrl?: string;
  open: boolean;
  log?: Logger;
  secureCookies?: boolean;
  /** Resolves when the console should stop; default: SIGINT or SIGTERM. */
  until?: Promise<unknown>;
}

/** Opens `url` with the platform's opener, if there is one; failures are ignored. */
export function openBrowser(url: string): void {
  const opener = process.platform === 'darwin' ? ['open', url] : process.platform === 'win32' ? ['cmd', '/c', 'start', '""', url] : ['xdg-open', url];
  try {
    const child = spawn(opener[0]!, opener.slice(1), { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch { /* no browser here: the URL is printed */ }
}

export async function runConsole(o: RunConsoleOptions): Promise<void> {
  const { server } = createConsoleServer({ signIn: o.signIn, tokenUrl: o.tokenUrl, log: o.log, secureCookies: o.secureCookies });
  server.listen(o.port, o.host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  o.signIn.listening?.(o.host, port);
  if (o.signIn.signInUrl) {
    const url = o.signIn.signInUrl();
    process.stderr.write('apikey-operator console: open this URL in your browser to sign in (it works once); Ctrl-C stops the console.\n');
    process.stdout.write(`${url}\n`);
    if (o.open) openBrowser(url);
  } else {
    process.stderr.write(`apikey-operator console listening on ${o.host}:${port}\n`);
  }
  const stop = o.until ?? new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stop;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}
