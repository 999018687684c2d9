/**
 * Values the console hands to the browser to keep for it, sealed: encrypted
 * and authenticated with AES-256-GCM under a key that lives only in this
 * process's memory, with an expiry inside the sealed part and a purpose as
 * additional data (a value sealed for one purpose opens for no other). The
 * browser can neither read nor change nor forge one; a console that restarts
 * opens none of the values it sealed before.
 *
 * This is what lets a sign-in in progress cost the console no memory at all:
 * anyone may start as many as they like, and none takes anything from anyone
 * else (see in-cluster.ts).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** A sealed value is at most this long (base64url): a cookie of a browser holds 4096 bytes with its name. */
export const MAX_SEALED_LENGTH = 3800;
const SEALED = /^[A-Za-z0-9_-]+$/;

export class Sealer {
  private readonly key: Buffer;
  private readonly now: () => number;

  constructor(opts: { key?: Buffer; now?: () => number } = {}) {
    this.key = opts.key ?? randomBytes(32);
    if (this.key.length !== 32) throw new Error('a sealing key has 32 bytes');
    this.now = opts.now ?? Date.now;
  }

  /** `value` (JSON) sealed for `purpose` until `ttlMs` from now; throws if it would be too long to keep in a cookie. */
  seal(purpose: string, value: unknown, ttlMs: number): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(purpose));
    const body = Buffer.concat([cipher.update(JSON.stringify({ exp: this.now() + ttlMs, value }), 'utf8'), cipher.final()]);
    const sealed = Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
    if (sealed.length > MAX_SEALED_LENGTH) throw new Error('the value is too large to seal into a cookie');
    return sealed;
  }

  /** The value sealed for `purpose`, if `sealed` is one of this sealer's, unexpired; anything else is undefined, never an error. */
  open(purpose: string, sealed: unknown): unknown {
    if (typeof sealed !== 'string' || sealed.length > MAX_SEALED_LENGTH || !SEALED.test(sealed)) return undefined;
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
    let plain: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(purpose));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
    const { exp, value } = JSON.parse(plain) as { exp: number; value: unknown };
    return typeof exp === 'number' && exp > this.now() ? value : undefined;
  }
}
