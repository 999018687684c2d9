/**
 * The keys the console seals its cookies with (sealed.ts). Two sources:
 *
 * - A keys file (`--session-keys-file`): the controller's Secret
 *   (shared/session-keys.ts says what it holds and when a key seals), mounted
 *   into every replica, so that any replica opens what any other sealed, and
 *   a restarted console opens what it sealed before. The kubelet updates a
 *   mounted Secret in place (an atomic swap of a symlinked folder), so the
 *   file is read again every RELOAD_MS and used when it changed. A file that
 *   is gone, unreadable or without a usable key leaves the last good keys in
 *   use (and says so in the log once); a console that never had a key seals
 *   and opens nothing (`ready` is false, and its readiness probe fails).
 * - None: one random key of this process alone (local mode, and in-cluster
 *   mode without the file): a restart forgets every cookie.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from '../shared/log.ts';
import { parseSessionKeysFile, sealingKey, type SessionKey } from '../shared/session-keys.ts';

export const RELOAD_MS = 2000;

export interface Keyring {
  /** The key that seals now; undefined while there is none. */
  sealing(): SessionKey | undefined;
  /** The key of this id, if it still opens. */
  opening(id: string): Buffer | undefined;
  /** The longest a sealed value may live under this keyring's policy (Infinity: no bound of its own). */
  readonly lifetimeMs: number;
}

/** One random key, in this process's memory only. */
export class ProcessKeyring implements Keyring {
  readonly lifetimeMs = Infinity;
  private readonly key: SessionKey;
  constructor(key: Buffer = randomBytes(32)) {
    if (key.length !== 32) throw new Error('a sealing key has 32 bytes');
    this.key = { id: randomBytes(6).toString('base64url'), key, created: Date.now() };
  }
  sealing(): SessionKey { return this.key; }
  opening(id: string): Buffer | undefined { return id === this.key.id ? this.key.key : undefined; }
}

/** The keys of a mounted keys file, read again every RELOAD_MS. */
export class FileKeyring implements Keyring {
  private keys: SessionKey[] = [];
  private publishLeadMs = 0;
  private lifetime = Infinity;
  private text: string | undefined;
  private problem: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly file: string;
  private readonly log: Logger | undefined;
  private readonly now: () => number;

  constructor(o: { file: string; log?: Logger; now?: () => number; reloadMs?: number }) {
    this.file = o.file;
    this.log = o.log;
    this.now = o.now ?? Date.now;
    this.reload();
    this.timer = setInterval(() => this.reload(), o.reloadMs ?? RELOAD_MS);
    this.timer.unref();
  }

  get lifetimeMs(): number { return this.lifetime; }

  /** Whether there is a key to seal with. */
  get ready(): boolean { return this.keys.length > 0; }

  sealing(): SessionKey | undefined {
    return sealingKey(this.keys, this.now(), this.publishLeadMs);
  }

  opening(id: string): Buffer | undefined {
    return this.keys.find((k) => k.id === id)?.key;
  }

  /** Reads the file; a change is used at once, a bad file keeps the last good keys. */
  reload(): void {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      this.trouble(`cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return;
    }
    if (text === this.text) return;
    const parsed = parseSessionKeysFile(text);
    if (parsed.keys.length === 0) {
      this.trouble('holds no usable key');
      return;
    }
    const had = this.keys.map((k) => k.id).join(',');
    this.text = text;
    this.keys = parsed.keys;
    this.publishLeadMs = parsed.publishLeadMs;
    this.lifetime = parsed.lifetimeMs;
    this.problem = undefined;
    // Key ids name keys, they are not secret.
    if (had !== parsed.keys.map((k) => k.id).join(',')) this.log?.info({ file: this.file, keys: parsed.keys.map((k) => k.id) }, 'console session keys loaded');
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private trouble(why: string): void {
    if (this.problem === why) return;
    this.problem = why;
    this.log?.warn({ file: this.file, keysInUse: this.keys.length }, `the console session keys file ${why}; the last good keys stay in use`);
  }
}
