import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  base62, generateKeyId, generateSecret, hashSecret, isKeyId, isWellFormedSecret, keyIdFromBytes,
  secretFromBytes, secretMatchesHash,
} from './format.ts';

interface Vectors {
  keyIds: { randomBytesHex: string; API_KEY_ID: string }[];
  secrets: { randomBytesHex: string; API_KEY_SECRET: string; crc32: number }[];
}
const vectors = JSON.parse(
  readFileSync(new URL('../../test/fixtures/key-format-vectors.json', import.meta.url), 'utf8'),
) as Vectors;

describe('key id format', () => {
  it.each(vectors.keyIds)('encodes $randomBytesHex as $API_KEY_ID', (v) => {
    expect(keyIdFromBytes(Buffer.from(v.randomBytesHex, 'hex'))).toBe(v.API_KEY_ID);
  });
  it('generates ids that match the contract pattern', () => {
    for (let i = 0; i < 200; i++) expect(isKeyId(generateKeyId())).toBe(true);
  });
});

describe('secret format', () => {
  it.each(vectors.secrets)('encodes $randomBytesHex as $API_KEY_SECRET', (v) => {
    const s = secretFromBytes(Buffer.from(v.randomBytesHex, 'hex'));
    expect(s).toBe(v.API_KEY_SECRET);
    expect(crc32(Buffer.from(s.slice(0, 47), 'ascii'))).toBe(v.crc32);
    expect(s.slice(47)).toBe(base62(BigInt(v.crc32), 6));
    expect(isWellFormedSecret(s)).toBe(true);
  });
  it('refuses a secret with one character changed, by its checksum', () => {
    const s = generateSecret();
    const i = 10;
    const typo = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    expect(isWellFormedSecret(typo)).toBe(false);
  });
  it.each([
    ['empty', ''], ['wrong prefix', `akx_${'0'.repeat(49)}`], ['too short', 'aks_abc'], ['non-string', 42],
    ['unicode', `aks_${'é'.repeat(49)}`],
  ])('refuses a malformed secret: %s', (_n, s) => {
    expect(isWellFormedSecret(s)).toBe(false);
  });
  it('generates distinct well-formed secrets', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const s = generateSecret();
      expect(isWellFormedSecret(s)).toBe(true);
      seen.add(s);
    }
    expect(seen.size).toBe(500);
  });
});

describe('secret hash', () => {
  it('is sha256: and the base64url SHA-256 of the secret', () => {
    const s = generateSecret();
    expect(hashSecret(s)).toBe(`sha256:${createHash('sha256').update(s).digest('base64url')}`);
    expect(secretMatchesHash(s, hashSecret(s))).toBe(true);
    expect(secretMatchesHash(generateSecret(), hashSecret(s))).toBe(false);
    expect(secretMatchesHash(s, undefined)).toBe(false);
    expect(secretMatchesHash(s, 'sha256:short')).toBe(false);
  });
});
