/**
 * The limit: a bare node:http server doing only what a token must cost:
 * read and parse the JSON body, one Map lookup, one SHA-256 with a
 * constant-time compare against the ApiKey's status.secretHash, one ES256
 * signature with node:crypto, and the JSON response. No routing, no
 * validation beyond that, no metrics, no rate limiting.
 */
import { createHash, createPrivateKey, randomUUID, sign, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { announce, AUDIENCE, ISSUER, readData } from '../data.ts';

const data = readData(process.argv[2]!);
const keys = new Map(data.apiKeys.map((k) => [k.status!.keyId!, {
  hash: Buffer.from(k.status!.secretHash!.slice(7), 'base64url'),
  deployment: `${k.metadata.namespace}/${k.spec.deploymentRef.name}`,
}]));
const record = data.signingKeys.keys[0]!;
const privateKey = createPrivateKey({ key: record.privateJwk!, format: 'jwk' });
const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: record.kid })).toString('base64url');

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const p = JSON.parse(Buffer.concat(chunks).toString()) as { client_id: string; client_secret: string };
    const k = keys.get(p.client_id);
    if (!k || !timingSafeEqual(k.hash, createHash('sha256').update(p.client_secret).digest())) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_client"}');
      return;
    }
    const iat = Math.floor(Date.now() / 1000);
    const claims = JSON.stringify({
      iss: ISSUER, sub: p.client_id, client_id: p.client_id, aud: AUDIENCE, iat, exp: iat + 86400, jti: randomUUID(),
      scope: 'deploy', deployment: k.deployment,
    });
    const input = `${header}.${Buffer.from(claims).toString('base64url')}`;
    const sig = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    const body = `{"access_token":"${input}.${sig}","token_type":"Bearer","expires_in":86400,"scope":"deploy"}`;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': body.length }).end(body);
  });
});
server.listen(0, '127.0.0.1', () => announce((server.address() as AddressInfo).port));
process.once('SIGTERM', () => { server.close(); server.closeAllConnections(); });
