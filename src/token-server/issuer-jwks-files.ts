/**
 * The keys of private federation issuers (--federation-issuer-jwks
 * ISSUER=PATH): a JWKS the cluster admin gives in a file, a Secret or
 * ConfigMap key mounted as a volume, for an issuer whose discovery the token
 * server cannot reach (self-hosted CI in a private network, another
 * cluster's ServiceAccount issuer). Nothing is ever fetched for them.
 *
 * The file gets the budgets of a fetched JWKS (issuer-keys.ts): at most
 * MAX_DOCUMENT_BYTES, at most MAX_JWKS_KEYS keys; and, since a person wrote
 * it, stricter checks: every key is a public key of an asymmetric type
 * (RSA, EC, OKP) that Node can import, for signatures (no `use` or `use:
 * sig`), with no private part (`d`, ...). A file that fails is refused whole
 * with a message that names the file and the key, never its content.
 *
 * Rotation: the file is polled (a Secret or ConfigMap volume swaps a
 * symlink, which inotify-based watches miss) and read again when it changes;
 * the new key set replaces the old one at once, so listing both the old and
 * the new keys during a rotation keeps both working, and removing a key stops
 * it. A changed file that does not load is logged and counted, and the
 * previous keys stay in use: a half-written or mistaken edit never turns a
 * working issuer off (nor on with other keys). At start, a file that does not
 * load is an error of the flag: the program refuses to start.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync, statSync, unwatchFile, watchFile } from 'node:fs';
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { Logger } from '../shared/log.ts';
import { checkedJwks, MAX_DOCUMENT_BYTES } from './issuer-keys.ts';

const PUBLIC_KEY_TYPES = new Set(['RSA', 'EC', 'OKP']);
/** Members of a JWK that carry private key material (RFC 7518 6.2.2, 6.3.2; RFC 8037). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export interface LoadedJwks {
  keys: JWTVerifyGetKey;
  /** The keys' `kid`s ('' for a key without one), for the log. */
  kids: string[];
}

/** Reads and checks the JWKS file at `path`; throws an Error that names the file, never its content. */
export function loadJwksFile(path: string): LoadedJwks {
  let text: string;
  try {
    if (statSync(path).size > MAX_DOCUMENT_BYTES) throw new Error(`${path} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code ? `cannot read ${path} (${code})` : (err as Error).message, { cause: err });
  }
  let set: JSONWebKeySet;
  try {
    set = JSON.parse(checkedJwks(text)) as JSONWebKeySet;
  } catch (err) {
    // V8's SyntaxError quotes the text it failed on: say what is wrong without it.
    throw new Error(`${path}: ${err instanceof SyntaxError ? 'not valid JSON' : (err as Error).message}`, { cause: err });
  }
  if (set.keys.length === 0) throw new Error(`${path}: the JWKS holds no key`);
  set.keys.forEach((k, i) => {
    const problem = keyProblem(k);
    if (problem) throw new Error(`${path}: key ${i}${typeof k?.kid === 'string' ? ` (kid ${JSON.stringify(k.kid.slice(0, 64))})` : ''} ${problem}`);
  });
  return { keys: createLocalJWKSet(set), kids: set.keys.map((k) => (typeof k.kid === 'string' ? k.kid : '')) };
}

/** Why a JWK of a private issuer's file is refused, or undefined. */
function keyProblem(k: unknown): string | undefined {
  if (!k || typeof k !== 'object' || Array.isArray(k)) return 'is not a JSON object';
  const jwk = k as Record<string, unknown>;
  if (typeof jwk.kty !== 'string' || !PUBLIC_KEY_TYPES.has(jwk.kty)) return 'is not an RSA, EC or OKP public key (kty)';
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) return 'holds private key material: give only the issuer\'s public keys';
  if (jwk.use !== undefined && jwk.use !== 'sig') return 'is not for signatures (use)';
  try {
    createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    return 'is not a usable public key';
  }
  return undefined;
}

export interface JwksFilesOptions {
  /** Issuer -> file (--federation-issuer-jwks). */
  files: ReadonlyMap<string, string>;
  log: Logger;
  /** Every load of a file, by result (metrics). */
  observe?: (result: 'ok' | 'error') => void;
  /** How often the files are polled for a change. */
  intervalMs?: number;
}

interface FileState {
  path: string;
  keys: JWTVerifyGetKey;
  stamp: string;
  onChange: () => void;
}

/** The private issuers' key sets, each read from its file at start and again whenever it changes. */
export class JwksFiles {
  private readonly states = new Map<string, FileState>();
  private readonly opts: JwksFilesOptions;

  /** Loads every file; throws for the first that does not load. */
  constructor(opts: JwksFilesOptions) {
    this.opts = opts;
    for (const [issuer, path] of opts.files) {
      const loaded = loadJwksFile(path);
      opts.observe?.('ok');
      opts.log.info({ issuer, path, kids: loaded.kids }, 'private federation issuer keys loaded');
      this.states.set(issuer, { path, keys: loaded.keys, stamp: stampOf(path), onChange: () => this.check(issuer) });
    }
  }

  /** How many private issuers are configured. */
  get count(): number {
    return this.states.size;
  }

  has(issuer: string): boolean {
    return this.states.has(issuer);
  }

  /** The current key set of a private issuer. */
  keys(issuer: string): JWTVerifyGetKey | undefined {
    return this.states.get(issuer)?.keys;
  }

  start(): void {
    for (const s of this.states.values()) watchFile(s.path, { interval: this.opts.intervalMs ?? 1000, persistent: false }, s.onChange);
  }

  stop(): void {
    for (const s of this.states.values()) unwatchFile(s.path, s.onChange);
  }

  /** Reads a changed file again: its keys replace the previous ones, or, if it does not load, the previous ones stay. */
  check(issuer: string): void {
    const s = this.states.get(issuer);
    if (!s) return;
    const stamp = stampOf(s.path);
    if (stamp === s.stamp) return;
    s.stamp = stamp;
    try {
      const loaded = loadJwksFile(s.path);
      s.keys = loaded.keys;
      this.opts.observe?.('ok');
      this.opts.log.info({ issuer, path: s.path, kids: loaded.kids }, 'private federation issuer keys reloaded');
    } catch (err) {
      this.opts.observe?.('error');
      this.opts.log.error({ issuer, why: (err as Error).message },
        'the changed JWKS file of a private federation issuer does not load; still verifying with its previous keys');
    }
  }
}

/** Modification time, size and inode (through symlinks), to tell a real change. */
function stampOf(path: string): string {
  try {
    const s = statSync(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return 'missing';
  }
}
