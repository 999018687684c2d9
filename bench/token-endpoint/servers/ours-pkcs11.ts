/**
 * This project's token server signing through PKCS#11: a SoftHSM token of its
 * own in a temporary directory, one ES256 key generated in it (as the
 * controller would), and the same keys and clients as the other contenders.
 * Its JWKS differs from the shared data's (the key is the token's), so the
 * runner verifies its tokens against the server's own /.well-known/jwks.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../../src/shared/log.ts';
import { Pkcs11KeySource } from '../../../src/shared/pkcs11/source.ts';
import { DEFAULT_PKCS11_SESSIONS, Pkcs11Token } from '../../../src/shared/pkcs11/token.ts';
import { generateSigningKey } from '../../../src/shared/signing-keys.ts';
import { startTokenServer } from '../../../src/token-server/main.ts';
import { MemoryKeyStore } from '../../../src/token-server/memory-key-store.ts';
import { announce, AUDIENCE, ISSUER, readData } from '../data.ts';

const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const sessions = Number(process.env.BENCH_PKCS11_SESSIONS ?? DEFAULT_PKCS11_SESSIONS);
const dir = mkdtempSync(join(tmpdir(), 'bench-softhsm-'));
mkdirSync(join(dir, 'tokens'));
const conf = join(dir, 'softhsm2.conf');
writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
process.env.SOFTHSM2_CONF = conf;
const pin = randomBytes(8).toString('hex');
const pinFile = join(dir, 'pin');
writeFileSync(pinFile, pin, { mode: 0o600 });
execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--pin', pin, '--so-pin', randomBytes(8).toString('hex')], { stdio: 'ignore' });

const log = createLogger({ level: 'warn', name: 'bench-pkcs11' });
const config = { modulePath: MODULE, tokenLabel: 'bench', pinFile, labelPrefix: 'bench-', sessions };
// The controller's part: one key generated in the token.
const controllerToken = new Pkcs11Token({ ...config, readWrite: true, log });
controllerToken.start();
const key = await generateSigningKey('ES256', Date.now() - 1000, Date.now(), new Pkcs11KeySource(controllerToken));
controllerToken.stop();

const data = readData(process.argv[2]!);
const store = new MemoryKeyStore({ apiKeys: data.apiKeys, deployments: data.deployments, signingKeys: { version: 1, keys: [key] } });
const server = await startTokenServer({
  kc: new KubeConfig(), port: 0, host: '127.0.0.1', issuer: ISSUER, audiences: [AUDIENCE],
  operatorNamespace: 'bench', namespaces: [], logLevel: 'warn', pkcs11: config,
}, { store, log });
// Ready once the probe has seen the key in the token.
while (!server.ready()) await new Promise((r) => setTimeout(r, 50));
announce(server.port);
process.once('SIGTERM', () => {
  void server.close(1000).then(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
});
