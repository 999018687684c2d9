/**
 * Private federation issuers: JWKS files checked like a fetched JWKS and
 * more, rotated by rewriting the file, and a bad edit that keeps the keys
 * that worked.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../shared/log.ts';
import { JwksFiles, loadJwksFile } from './issuer-jwks-files.ts';
import { FederatedTokenRefused, IssuerKeys, MAX_DOCUMENT_BYTES, MAX_JWKS_KEYS } from './issuer-keys.ts';

const ISSUER = 'https://127.0.0.1:6443/';
let dir: string;
let n = 0;
const pairs: { privateKey: CryptoKey; jwk: JWK; privateJwk: JWK }[] = [];

function file(content: string): string {
  const path = join(dir, `jwks-${++n}.json`);
  writeFileSync(path, content);
  return path;
}

/** Replaces `path` the way a Secret volume does: a new file renamed over it. */
function replace(path: string, content: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

function token(i: number, claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'system:serviceaccount:ci:builder', aud: 'https://a.example', iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: `k${i}` }).setIssuer(ISSUER).sign(pairs[i]!.privateKey);
}

function recordingLog() {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => { lines.push({ level, fields, msg }); };
  return { lines, log: { error: at('error'), info: at('info'), warn: at('warn'), debug: at('debug') } as unknown as Logger };
}

const jwks = (...i: number[]) => JSON.stringify({ keys: i.map((k) => pairs[k]!.jwk) });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jwks-files-'));
  for (let i = 0; i < 3; i++) {
    const p = await generateKeyPair('ES256', { extractable: true });
    pairs.push({ privateKey: p.privateKey, jwk: { ...await exportJWK(p.publicKey), kid: `k${i}`, alg: 'ES256', use: 'sig' }, privateJwk: await exportJWK(p.privateKey) });
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a private issuer\'s JWKS file', () => {
  it('loads a set of public signature keys and names their kids', () => {
    expect(loadJwksFile(file(jwks(0, 1))).kids).toEqual(['k0', 'k1']);
  });

  it.each<[string, () => string, string]>([
    ['a missing file', () => join(dir, 'nope.json'), 'cannot read'],
    ['text that is not JSON, without quoting it', () => file('{"keys": [ secret-looking-text'), 'not valid JSON'],
    ['JSON without a keys list', () => file('{"kty":"EC"}'), 'has no keys list'],
    ['an empty key list', () => file('{"keys":[]}'), 'holds no key'],
    ['more keys than a fetched JWKS may hold', () => file(JSON.stringify({ keys: Array.from({ length: MAX_JWKS_KEYS + 1 }, () => pairs[0]!.jwk) })), `more than ${MAX_JWKS_KEYS}`],
    ['a file larger than a fetched JWKS may be', () => file(' '.repeat(MAX_DOCUMENT_BYTES + 1)), `larger than ${MAX_DOCUMENT_BYTES} bytes`],
    ['a private key', () => file(JSON.stringify({ keys: [{ ...pairs[0]!.privateJwk, kid: 'k0' }] })), 'key 0 (kid "k0") holds private key material'],
    ['a shared secret (kty oct)', () => file(JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] })), 'key 0 is not an RSA, EC or OKP public key'],
    ['an encryption key', () => file(JSON.stringify({ keys: [{ ...pairs[0]!.jwk, use: 'enc' }] })), 'is not for signatures'],
    ['a key Node cannot import', () => file(JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' }] })), 'is not a usable public key'],
    ['a key that is not an object', () => file('{"keys":["k"]}'), 'key 0 is not a JSON object'],
  ])('refuses %s, naming the file', (_what, path, message) => {
    const p = path();
    expect(() => loadJwksFile(p)).toThrow(message);
    expect(() => loadJwksFile(p)).toThrow(p);
    try { loadJwksFile(p); } catch (err) { expect((err as Error).message).not.toContain('secret-looking-text'); }
  });
});

describe('a private issuer, verified with its file\'s keys', () => {
  it('accepts a token signed by a listed key, with the same checks as a discovered issuer, and never fetches', async () => {
    const files = new JwksFiles({ files: new Map([[ISSUER, file(jwks(0))]]), log: recordingLog().log });
    const keys = new IssuerKeys({ issuers: new Set(), files, log: recordingLog().log });
    expect(keys.enabled).toBe(true);
    expect(keys.allows(ISSUER)).toBe(true);
    expect(keys.allows('https://127.0.0.1:6443')).toBe(false);
    expect((await keys.verify(ISSUER, await token(0))).sub).toBe('system:serviceaccount:ci:builder');
    // Another key under the same iss and kid; an expired token; a token too old by iat: refused as for any issuer.
    const forged = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'ES256', kid: 'k0' }).setIssuer(ISSUER).setIssuedAt().setExpirationTime('10m')
      .sign(pairs[1]!.privateKey);
    await expect(keys.verify(ISSUER, forged)).rejects.toBeInstanceOf(FederatedTokenRefused);
    await expect(keys.verify(ISSUER, await token(0, { exp: Math.floor(Date.now() / 1000) - 120 }))).rejects.toThrow('ERR_JWT_EXPIRED');
    await expect(keys.verify(ISSUER, await token(0, { iat: Math.floor(Date.now() / 1000) - 7200 }))).rejects.toBeInstanceOf(FederatedTokenRefused);
  });

  it('rotates when the file changes: a key added works, a key removed stops, and a bad edit keeps the keys that worked', async () => {
    const path = file(jwks(0));
    const observed: string[] = [];
    const { lines, log } = recordingLog();
    const files = new JwksFiles({ files: new Map([[ISSUER, path]]), log, observe: (r) => observed.push(r) });
    const keys = new IssuerKeys({ issuers: new Set(), files, log });
    const accepts = async (i: number) => keys.verify(ISSUER, await token(i)).then(() => true, () => false);
    expect([await accepts(0), await accepts(1)]).toEqual([true, false]);
    // Rotation, step one: both keys listed.
    replace(path, jwks(0, 1));
    files.check(ISSUER);
    expect([await accepts(0), await accepts(1)]).toEqual([true, true]);
    // Step two: the old key removed.
    replace(path, jwks(1));
    files.check(ISSUER);
    expect([await accepts(0), await accepts(1)]).toEqual([false, true]);
    // A mistaken edit: logged, counted, and the issuer keeps verifying with key 1 alone.
    replace(path, '{"keys": [');
    files.check(ISSUER);
    expect([await accepts(0), await accepts(1), await accepts(2)]).toEqual([false, true, false]);
    expect(lines.at(-1)).toMatchObject({ level: 'error', fields: { issuer: ISSUER, why: `${path}: not valid JSON` } });
    // A file removed altogether: the same.
    rmSync(path);
    files.check(ISSUER);
    expect(await accepts(1)).toBe(true);
    expect(observed).toEqual(['ok', 'ok', 'ok', 'error', 'error']);
  });

  it('refuses to be built from a file that does not load', () => {
    expect(() => new JwksFiles({ files: new Map([[ISSUER, file('nope')]]), log: recordingLog().log })).toThrow('not valid JSON');
  });
});
