/**
 * Values the console hands to the browser to keep for it, sealed: encrypted
 * and authenticated with AES-256-GCM under a key of its keyring (keyring.ts),
 * with an expiry inside the sealed part and a purpose as additional data (a
 * value sealed for one purpose opens for no other). The browser can neither
 * read nor change nor forge one.
 *
 * A sealed value is `<key id, 8 characters><base64url(iv | tag | ciphertext)>`,
 * only base64url characters (a cookie value needs no quoting); the key id is
 * bound into the additional data too. It opens wherever the keyring still
 * has its key: with the shared keys file, on every replica and after a
 * restart; with a process's own key, only in that process. Anything else
 * (another key's, a retired key's, a changed character, a truncation,
 * garbage, an expired value) opens to undefined, never an error.
 *
 * This is what lets a sign-in in progress cost the console no memory at all:
 * anyone may start as many as they like, and none takes anything from anyone
 * else (see in-cluster.ts); and what lets a session live in its cookie
 * (sealed-sessions.ts).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ProcessKeyring, type Keyring } from './keyring.ts';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_LENGTH = 8;
/** A sealed value is at most this long: a browser keeps a cookie of 4096 bytes with its name and attributes. */
export const MAX_SEALED_LENGTH = 3900;
const SEALED = /^[A-Za-z0-9_-]+$/;

export class TooLargeToSeal extends Error {
  override readonly name = 'TooLargeToSeal';
}

const aad = (purpose: string, keyId: string) => Buffer.from(`${purpose}\0${keyId}`);

export class Sealer {
  readonly keyring: Keyring;
  private readonly now: () => number;

  constructor(opts: { key?: Buffer; keyring?: Keyring; now?: () => number } = {}) {
    this.keyring = opts.keyring ?? new ProcessKeyring(opts.key);
    this.now = opts.now ?? Date.now;
  }

  /**
   * `value` (JSON) sealed for `purpose` until `ttlMs` from now; throws
   * TooLargeToSeal if it would be longer than `maxLength`, and an Error when
   * the keyring has no key yet.
   */
  seal(purpose: string, value: unknown, ttlMs: number, maxLength = MAX_SEALED_LENGTH): string {
    const key = this.keyring.sealing();
    if (!key) throw new Error('no session key to seal with yet');
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.key, iv);
    cipher.setAAD(aad(purpose, key.id));
    const body = Buffer.concat([cipher.update(JSON.stringify({ exp: this.now() + ttlMs, value }), 'utf8'), cipher.final()]);
    const sealed = key.id + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
    if (sealed.length > maxLength) throw new TooLargeToSeal('the value is too large to seal into a cookie');
    return sealed;
  }

  /** The value sealed for `purpose`, if `sealed` opens with a key of the keyring and is unexpired; anything else is undefined, never an error. */
  open(purpose: string, sealed: unknown, maxLength = MAX_SEALED_LENGTH): unknown {
    if (typeof sealed !== 'string' || sealed.length > maxLength || !SEALED.test(sealed)) return undefined;
    const keyId = sealed.slice(0, KEY_ID_LENGTH);
    const key = this.keyring.opening(keyId);
    if (!key) return undefined;
    const body = sealed.slice(KEY_ID_LENGTH);
    const raw = Buffer.from(body, 'base64url');
    // Only the one encoding this sealer writes: a spare bit or a stray character set is another value.
    if (raw.length <= IV_BYTES + TAG_BYTES || raw.toString('base64url') !== body) return undefined;
    let plain: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(purpose, keyId));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
    const { exp, value } = JSON.parse(plain) as { exp: number; value: unknown };
    return typeof exp === 'number' && exp > this.now() ? value : undefined;
  }
}
