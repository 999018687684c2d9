/**
 * The API key formats of the contract. Key ids and secrets carry a fixed
 * prefix so secret scanners recognise them, and a secret carries a CRC-32 of
 * itself so that a typo is refused before any lookup.
 *
 *   API_KEY_ID     ak_  + base32(16 random bytes), lowercase, unpadded (26 chars)
 *   API_KEY_SECRET aks_ + base62(32 random bytes, 43 chars) + base62(crc32(prefix+body), 6 chars)
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const KEY_ID_PREFIX = 'ak_';
export const SECRET_PREFIX = 'aks_';
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SECRET_BODY_LEN = 43;
const SECRET_CRC_LEN = 6;

export const KEY_ID_PATTERN = /^ak_[a-z2-7]{26}$/;
export const SECRET_PATTERN = /^aks_[0-9A-Za-z]{49}$/;
/**
 * What a secret scanner looks for in text (docs/concepts/secrets.md, "For secret scanners"): the
 * prefix and exactly 49 base62 characters, neither inside a longer word. The checksum
 * (isWellFormedSecret) then tells a secret from a look-alike offline.
 */
export const SECRET_SCAN_PATTERN = /\baks_[0-9A-Za-z]{49}\b/g;

/** Lowercase RFC 4648 base32 without padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** `bytes` read as a big-endian unsigned integer, in base62, left-padded with '0' to `width`. */
export function base62(bytes: Uint8Array | bigint, width: number): string {
  let n = typeof bytes === 'bigint' ? bytes : BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
  let out = '';
  while (n > 0n) {
    out = BASE62[Number(n % 62n)]! + out;
    n /= 62n;
  }
  if (out.length > width) throw new RangeError(`value does not fit in ${width} base62 digits`);
  return out.padStart(width, '0');
}

function checksum(prefixAndBody: string): string {
  return base62(BigInt(crc32(Buffer.from(prefixAndBody, 'ascii')) >>> 0), SECRET_CRC_LEN);
}

export function keyIdFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new RangeError('a key id takes 16 bytes');
  return KEY_ID_PREFIX + base32(bytes);
}

export function secretFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== 32) throw new RangeError('a secret takes 32 bytes');
  const head = SECRET_PREFIX + base62(bytes, SECRET_BODY_LEN);
  return head + checksum(head);
}

/** A new key id from 16 bytes of `crypto.randomBytes`. */
export function generateKeyId(): string {
  return keyIdFromBytes(randomBytes(16));
}

/** A new secret from 32 bytes of `crypto.randomBytes`. */
export function generateSecret(): string {
  return secretFromBytes(randomBytes(32));
}

export function isKeyId(s: unknown): s is string {
  return typeof s === 'string' && KEY_ID_PATTERN.test(s);
}

/** True when `s` has the secret's shape and its checksum matches: no lookup needed to refuse a typo. */
export function isWellFormedSecret(s: unknown): s is string {
  if (typeof s !== 'string' || !SECRET_PATTERN.test(s)) return false;
  const head = s.slice(0, SECRET_PREFIX.length + SECRET_BODY_LEN);
  return checksum(head) === s.slice(head.length);
}

const HASH_PREFIX = 'sha256:';
/** What hashSecret returns: `sha256:` and the 43 characters of an unpadded base64url SHA-256. */
export const SECRET_HASH_PATTERN = /^sha256:[A-Za-z0-9_-]{43}$/;

/** The raw SHA-256 of a secret. */
export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** `sha256:` + base64url(SHA-256(secret)): what status.secretHash holds. */
export function hashSecret(secret: string): string {
  return HASH_PREFIX + secretDigest(secret).toString('base64url');
}

/** The raw digest in a stored `sha256:` hash, or undefined when it is not one. */
export function hashDigest(storedHash: string | undefined): Buffer | undefined {
  if (!storedHash?.startsWith(HASH_PREFIX)) return undefined;
  const digest = Buffer.from(storedHash.slice(HASH_PREFIX.length), 'base64url');
  return digest.length === 32 ? digest : undefined;
}

/** Constant-time comparison of a presented secret with a stored `sha256:` hash. */
export function secretMatchesHash(secret: string, storedHash: string | undefined): boolean {
  const want = hashDigest(storedHash);
  return want !== undefined && timingSafeEqual(want, secretDigest(secret));
}
