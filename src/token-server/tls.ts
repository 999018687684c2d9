/**
 * TLS for the token endpoint: a client secret travels in every token
 * request. The certificate and key are read from files (a Kubernetes TLS
 * Secret mounted as a volume, which cert-manager renews in place) and read
 * again whenever either file changes, so a renewed certificate is served
 * without a restart. The files are polled rather than watched: a Secret
 * volume swaps a symlink, which inotify-based watches miss. A pair that does
 * not load (half-written, mismatched) is logged and the previous one kept.
 */
import { existsSync, readFileSync, statSync, unwatchFile, watchFile } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from '../shared/log.ts';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** TLS 1.2 at least: 1.0 and 1.1 are deprecated (RFC 8996). */
export const MIN_TLS_VERSION = 'TLSv1.2';

/** Reads the pair and checks that it makes a context; throws with a message that names the files, never their content. */
export function loadTlsFiles(files: TlsFiles): SecureContextOptions {
  let options: SecureContextOptions;
  try {
    options = { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile), minVersion: MIN_TLS_VERSION };
  } catch (err) {
    throw new Error(`cannot read the TLS certificate or key (${files.certFile}, ${files.keyFile}): ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`,
      { cause: err });
  }
  try {
    createSecureContext(options);
  } catch {
    // OpenSSL's message may quote the PEM it failed on: say what is wrong without it.
    throw new Error(`the TLS certificate ${files.certFile} and key ${files.keyFile} do not make a usable pair (not PEM, or the key does not match)`);
  }
  return options;
}

/**
 * Resolves once both files exist: a Secret volume marked optional is empty
 * until its Secret is made (the controller's --serving-cert-secret, or
 * cert-manager), and the kubelet fills it a moment later. Says so every 10 s.
 */
export async function waitForTlsFiles(files: TlsFiles, log: Logger, intervalMs = 1000): Promise<void> {
  for (let waited = 0; !(existsSync(files.certFile) && existsSync(files.keyFile)); waited += intervalMs) {
    if (waited % 10_000 === 0) log.warn({ certFile: files.certFile, keyFile: files.keyFile }, 'waiting for the TLS certificate and key to appear');
    await sleep(intervalMs);
  }
}

/**
 * Calls `apply` with the pair's options whenever either file changes (polled
 * every `intervalMs`), until `stop()`.
 */
export class TlsReloader {
  private readonly files: TlsFiles;
  private readonly log: Logger;
  private readonly apply: (options: SecureContextOptions) => void;
  private readonly intervalMs: number;
  private lastStamp: string;
  private readonly onChange = () => this.check();

  constructor(files: TlsFiles, apply: (options: SecureContextOptions) => void, log: Logger, intervalMs = 1000) {
    this.files = files;
    this.apply = apply;
    this.log = log;
    this.intervalMs = intervalMs;
    this.lastStamp = this.stamp();
  }

  start(): void {
    for (const f of [this.files.certFile, this.files.keyFile]) watchFile(f, { interval: this.intervalMs, persistent: false }, this.onChange);
  }

  stop(): void {
    for (const f of [this.files.certFile, this.files.keyFile]) unwatchFile(f, this.onChange);
  }

  /** Modification times and sizes of both files (through symlinks), to tell a real change. */
  private stamp(): string {
    return [this.files.certFile, this.files.keyFile].map((f) => {
      try {
        const s = statSync(f);
        return `${s.mtimeMs}:${s.size}:${s.ino}`;
      } catch {
        return 'missing';
      }
    }).join('|');
  }

  private check(): void {
    const stamp = this.stamp();
    if (stamp === this.lastStamp) return;
    try {
      this.apply(loadTlsFiles(this.files));
      this.lastStamp = stamp;
      this.log.info({ certFile: this.files.certFile }, 'TLS certificate reloaded');
    } catch (err) {
      // A renewal may write the two files one after the other: the next poll tries again.
      this.log.warn({ why: (err as Error).message }, 'the changed TLS certificate does not load yet; still serving the previous one');
    }
  }
}
