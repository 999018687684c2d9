/**
 * The plugin's DPoP key (RFC 9449): `kubectl apikey token NAME --dpop FILE`
 * binds the token to the key in FILE, a private JWK (ES256, P-256) that
 * lives on this machine only. The file is created, mode 0600, when it does
 * not exist; the private key is never sent anywhere: each request carries a
 * proof signed with it, and the token server records only the public key's
 * thumbprint (`cnf.jkt`) in the token. Whoever uses the token must make a
 * proof with the same key for every request (docs/guides/dpop.md).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { PluginError } from './errors.ts';

export interface DpopKey {
  /** A proof for a POST to `url` (without its query), with the server's nonce when it asked for one. */
  proof(url: string, nonce?: string): string;
}

function load(file: string): KeyObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PluginError(`cannot read the DPoP key ${file}: ${(err as Error).message}`);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    try {
      writeFileSync(file, `${JSON.stringify(privateKey.export({ format: 'jwk' }))}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      throw new PluginError(`cannot create the DPoP key ${file}: ${(e as Error).message}`);
    }
    return privateKey;
  }
  try {
    const key = createPrivateKey({ key: JSON.parse(text) as Record<string, string>, format: 'jwk' });
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('not a P-256 key');
    return key;
  } catch (err) {
    throw new PluginError(`the DPoP key ${file} is not a private P-256 JWK (${(err as Error).message}); remove it to have a new one made`);
  }
}

/** The key in `file`, made there (mode 0600) if the file does not exist. */
export function dpopKey(file: string): DpopKey {
  const privateKey = load(file);
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const header = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } })).toString('base64url');
  return {
    proof(url, nonce) {
      const u = new URL(url);
      const claims = { jti: randomUUID(), htm: 'POST', htu: `${u.origin}${u.pathname}`, iat: Math.floor(Date.now() / 1000), ...(nonce ? { nonce } : {}) };
      const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
      return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    },
  };
}
