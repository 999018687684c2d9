/**
 * A secret-scanning partner shaped like GitHub's, on loopback: ECDSA P-256 key pairs, an HTTPS
 * server (a test CA of its own) that publishes their public keys as
 * https://api.github.com/meta/public_keys/secret_scanning does
 * (`{"public_keys": [{"key_identifier", "key", "is_current"}]}`), and the sending side: a report
 * body signed as GitHub signs it (base64 of a DER ECDSA signature over SHA-256 of the raw body, in
 * Github-Public-Key-Signature, the key's id in Github-Public-Key-Identifier). It counts the
 * fetches of its keys, so a test can prove how often the token server asked.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCa } from './test-ca.ts';

export const KEYS_PATH = '/meta/public_keys/secret_scanning';

export interface PartnerKey { id: string; privateKey: KeyObject; publicPem: string }

/** A P-256 key pair with a GitHub-style identifier (the hex SHA-256 of its public key). */
export function partnerKey(): PartnerKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { id: createHash('sha256').update(publicPem).digest('hex'), privateKey, publicPem };
}

/** The headers GitHub sends with a report signed by `key`. */
export function signedHeaders(body: string | Buffer, key: PartnerKey): Record<string, string> {
  return {
    'content-type': 'application/json',
    'github-public-key-identifier': key.id,
    'github-public-key-signature': sign('sha256', Buffer.from(body), { key: key.privateKey, dsaEncoding: 'der' }).toString('base64'),
  };
}

export class ScanningPartner {
  readonly keysUrl: string;
  readonly caFile: string;
  /** The keys published, first the current one. */
  published: PartnerKey[];
  fetches = 0;
  private readonly server: Server;
  private readonly dir: string;

  private constructor(server: Server, dir: string, caFile: string, keys: PartnerKey[]) {
    this.server = server;
    this.dir = dir;
    this.caFile = caFile;
    this.published = keys;
    this.keysUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}${KEYS_PATH}`;
  }

  static async start(): Promise<ScanningPartner> {
    const dir = mkdtempSync(join(tmpdir(), 'scanning-partner-'));
    const ca = makeTestCa(dir, 'apikey-operator-scanning-test-ca');
    const { certFile, keyFile } = ca.serving('partner');
    const self: { partner?: ScanningPartner } = {};
    const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
      const partner = self.partner;
      if (req.url !== KEYS_PATH || !partner) {
        res.writeHead(404).end();
        return;
      }
      partner.fetches++;
      const body = JSON.stringify({
        public_keys: partner.published.map((k, i) => ({ key_identifier: k.id, key: k.publicPem, is_current: i === 0 })),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    self.partner = new ScanningPartner(server, dir, ca.caFile, [partnerKey()]);
    return self.partner;
  }

  get current(): PartnerKey {
    return this.published[0]!;
  }

  /** A report as GitHub sends it: the body and its signed headers. */
  report(matches: { token: string; type?: string; url?: string; source?: string }[], key = this.current): { body: string; headers: Record<string, string> } {
    const body = JSON.stringify(matches.map((m) => ({ type: 'apikeys_dev_api_key_secret', source: 'content', ...m })));
    return { body, headers: signedHeaders(body, key) };
  }

  async stop(): Promise<void> {
    await new Promise((r) => this.server.close(r));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
