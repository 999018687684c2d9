/**
 * IssuerKeys against a real HTTPS issuer on loopback that misbehaves: what
 * an allowed issuer (or whoever took over its host) sends is bounded before
 * it is parsed, and a refusal is a refused token, never a crash.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/log.ts';
import { makeTestCa } from '../../test/support/test-ca.ts';
import { FederatedTokenRefused, IssuerKeys, MAX_DOCUMENT_BYTES, MAX_JWKS_KEYS } from './issuer-keys.ts';

/** What the issuer answers at its two paths; `chunked` sends the body without a Content-Length. */
interface Behaviour {
  discovery?: (issuer: string) => string;
  jwks?: () => string;
  chunked?: boolean;
}

let dir: string;
let caPem: string;
let server: Server;
let issuer: string;
let behaviour: Behaviour = {};
let privateKey: CryptoKey;
let jwk: JWK;
const bytesSent = { jwks: 0 };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'issuer-keys-'));
  const ca = makeTestCa(dir, 'issuer-keys-test-ca');
  caPem = ca.caPem();
  const { certFile, keyFile } = ca.serving('issuer');
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey;
  jwk = { ...await exportJWK(pair.publicKey), kid: 'k1', alg: 'ES256' };
  server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const body = path === '/.well-known/openid-configuration'
      ? (behaviour.discovery ?? ((i: string) => JSON.stringify({ issuer: i, jwks_uri: `${i}/jwks` })))(issuer)
      : path === '/jwks' ? (behaviour.jwks ?? (() => JSON.stringify({ keys: [jwk] })))() : undefined;
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    if (path === '/jwks') bytesSent.jwks = 0;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (!behaviour.chunked) headers['content-length'] = String(Buffer.byteLength(body));
    res.writeHead(200, headers);
    // In 16 KiB pieces, so that a client that stops reading is seen to stop.
    const buf = Buffer.from(body);
    let at = 0;
    const pump = () => {
      while (at < buf.length) {
        const piece = buf.subarray(at, at + 16384);
        at += piece.length;
        if (path === '/jwks') bytesSent.jwks += piece.length;
        if (!res.write(piece)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    res.on('error', () => { /* the client hung up: expected for oversized bodies */ });
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const keys = () => new IssuerKeys({ issuers: new Set([issuer]), caPem, log: createLogger({ level: 'silent' }) });

function mint(): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'repo:acme/x:ref:refs/heads/main', aud: 'a' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(issuer).setIssuedAt(now).setExpirationTime(now + 300).sign(privateKey);
}

async function verdict(): Promise<string> {
  try {
    await keys().verify(issuer, await mint());
    return 'accepted';
  } catch (err) {
    if (err instanceof FederatedTokenRefused) return 'refused';
    throw err;
  }
}

const padded = (size: number) => JSON.stringify({ keys: [jwk], pad: 'x'.repeat(size) });

describe('documents of an allowed issuer', () => {
  it('accepts a token signed with a key of a JWKS of normal size', async () => {
    behaviour = {};
    expect(await verdict()).toBe('accepted');
  });

  it.each<[string, Behaviour]>([
    ['a JWKS larger than the limit, with its Content-Length', { jwks: () => padded(MAX_DOCUMENT_BYTES) }],
    ['a JWKS larger than the limit, chunked without a Content-Length', { jwks: () => padded(MAX_DOCUMENT_BYTES), chunked: true }],
    ['a discovery document larger than the limit', { discovery: (i) => JSON.stringify({ issuer: i, jwks_uri: `${i}/jwks`, pad: 'x'.repeat(MAX_DOCUMENT_BYTES) }) }],
    ['a chunked discovery document larger than the limit', {
      discovery: (i) => JSON.stringify({ issuer: i, jwks_uri: `${i}/jwks`, pad: 'x'.repeat(MAX_DOCUMENT_BYTES) }), chunked: true,
    }],
    [`a JWKS of more than ${MAX_JWKS_KEYS} keys`, { jwks: () => JSON.stringify({ keys: [jwk, ...Array.from({ length: MAX_JWKS_KEYS }, (_, i) => ({ ...jwk, kid: `x${i}` }))] }) }],
    ['a JWKS that is not JSON', { jwks: () => '{"keys": [' }],
    ['a JWKS without a keys list', { jwks: () => '{"keys": {}}' }],
    ['a discovery document that is a list', { discovery: () => '[]' }],
  ])('refuses the token when the issuer sends %s', async (_what, b) => {
    behaviour = b;
    expect(await verdict()).toBe('refused');
  });

  it('stops reading a huge chunked JWKS soon after the limit instead of reading it all', async () => {
    behaviour = { jwks: () => padded(8 * 1024 * 1024), chunked: true };
    expect(await verdict()).toBe('refused');
    await new Promise((resolve) => setTimeout(resolve, 200));
    // TLS and socket buffers let some more through, but nowhere near the 8 MiB.
    expect(bytesSent.jwks).toBeLessThan(4 * 1024 * 1024);
  });

  it('accepts a JWKS of exactly the limit of keys', async () => {
    behaviour = { jwks: () => JSON.stringify({ keys: [jwk, ...Array.from({ length: MAX_JWKS_KEYS - 1 }, (_, i) => ({ ...jwk, kid: `k${i + 2}` }))] }) };
    expect(await verdict()).toBe('accepted');
  });
});

describe('any JWKS an allowed issuer sends', () => {
  it('is a refused or an accepted token, never a crash, and accepted only when it holds the signing key', async () => {
    const randomKey = fc.oneof(
      fc.record({
        kty: fc.constantFrom('EC', 'RSA', 'oct', 'OKP', ''), crv: fc.constantFrom('P-256', 'P-384', 'Ed25519', 'x'),
        x: fc.string({ maxLength: 50 }), y: fc.string({ maxLength: 50 }), kid: fc.constantFrom('k1', 'k2', ''), alg: fc.constantFrom('ES256', 'HS256', 'none'),
        k: fc.string({ maxLength: 20 }), use: fc.constantFrom('sig', 'enc'),
      }, { requiredKeys: [] }),
      fc.jsonValue({ maxDepth: 2 }),
    );
    const document = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.tuple(fc.array(randomKey, { maxLength: 6 }), fc.boolean()).map(([ks, withReal]) => JSON.stringify({ keys: withReal ? [...ks, jwk] : ks })),
      fc.string({ maxLength: 60 }),
    );
    await fc.assert(fc.asyncProperty(document, async (doc) => {
      behaviour = { jwks: () => doc };
      const started = performance.now();
      const v = await verdict();
      expect(performance.now() - started).toBeLessThan(5000);
      if (v === 'accepted') expect(doc).toContain(JSON.stringify(jwk));
    }), { numRuns: 80 });
  }, 120_000);
});
