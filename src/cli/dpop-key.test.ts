/**
 * The plugin's `token --dpop FILE` path: the key file made once (0600) and
 * reused, and a DPoP-bound token from a token server that requires nonces
 * (the client retries once with the DPoP-Nonce), in process over real HTTP.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/log.ts';
import { DEFAULT_ROTATION, planSigningKeys } from '../shared/signing-keys.ts';
import { apiKeyFixture, deploymentObject } from '../token-server/fixtures.ts';
import { startTokenServer, type RunningTokenServer } from '../token-server/main.ts';
import { MemoryKeyStore } from '../token-server/memory-key-store.ts';
import { dpopKey } from '../client/dpop-key.ts';
import { requestToken } from '../client/oauth.ts';

const dep = deploymentObject('team-a', 'airflow', { audiences: ['https://api.example'] });
const key = apiKeyFixture(dep, 'ci');
let server: RunningTokenServer;
let url: string;
const dir = mkdtempSync(join(tmpdir(), 'dpop-key-'));

beforeAll(async () => {
  const store = new MemoryKeyStore({ deployments: [dep], apiKeys: [key.apiKey], signingKeys: await planSigningKeys(undefined, DEFAULT_ROTATION) });
  // Bound to a free port first, so that the issuer (what proofs name) is the URL the client uses.
  const probe = await startTokenServer({
    kc: new KubeConfig(), port: 0, host: '127.0.0.1', issuer: 'http://x', audiences: [], operatorNamespace: 'op', namespaces: [], logLevel: 'silent',
  }, { store, log: createLogger({ level: 'silent' }), defaultMetrics: false });
  const port = probe.port;
  await probe.close();
  server = await startTokenServer({
    kc: new KubeConfig(), port, host: '127.0.0.1', issuer: `http://127.0.0.1:${port}`, audiences: [], operatorNamespace: 'op', namespaces: [],
    logLevel: 'silent', dpopRequireNonce: true,
  }, { store, log: createLogger({ level: 'silent' }), defaultMetrics: false });
  url = `http://127.0.0.1:${port}/oauth/token`;
});
afterAll(async () => { await server?.close(); rmSync(dir, { recursive: true, force: true }); });

const thumbprint = (jwk: Record<string, string>) => createHash('sha256')
  .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest('base64url');

describe('kubectl apikey token --dpop FILE', () => {
  it('makes the key file once, mode 0600, and gets tokens bound to it through a nonce round trip', async () => {
    const file = join(dir, 'dpop.jwk');
    const ask = () => requestToken({
      url, params: { grant_type: 'client_credentials' }, basic: { id: key.keyId, secret: key.secret }, unreachableHint: '', dpop: dpopKey(file),
    });
    const first = await ask();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const jwk = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    expect(jwk.d).toBeDefined();
    expect(first.token_type).toBe('DPoP');
    expect(decodeJwt(first.access_token).cnf).toEqual({ jkt: thumbprint(jwk) });
    const second = await ask();
    expect(decodeJwt(second.access_token).cnf).toEqual({ jkt: thumbprint(jwk) });
  });

  it('refuses a key file that is not a private P-256 JWK, saying how to recover', () => {
    const file = join(dir, 'bad.jwk');
    writeFileSync(file, '{"kty":"oct","k":"c2VjcmV0"}');
    expect(() => dpopKey(file)).toThrow(/not a private P-256 JWK.*remove it/);
  });
});
