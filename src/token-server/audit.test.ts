import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/log.ts';
import { accessTokenClaims } from './access-token.ts';
import { asciiJson, TokenAudit, USER_AGENT_MAX } from './audit.ts';
import { AuditWriter } from './audit-writer.ts';
import { InvalidClient, SlowDown } from './oauth-errors.ts';

const log = createLogger({ level: 'silent' });
let dir: string;

beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'audit-unit-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function lines(file: string): unknown[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown);
}

const claims = () => accessTokenClaims({
  issuer: 'https://issuer.test', subject: 'ak_aaaaaaaaaaaaaaaaaaaaaaaaaa', clientId: 'ak_aaaaaaaaaaaaaaaaaaaaaaaaaa', audiences: ['https://api.test'],
  scope: 'deploy read', deployment: 'team/airflow', lifetimeSeconds: 3600, nowMs: Date.parse('2030-01-01T00:00:00Z'), credentialFingerprint: 'fp-secretish',
});

describe('the audit record', () => {
  it('of an issued token names the key, Deployment, audience, scope, jti and expiry, and never the credential fingerprint', async () => {
    const path = join(dir, 'audit.log');
    const writer = new AuditWriter({ path, maxSizeBytes: 0, maxBackups: 0, log });
    const audit = new TokenAudit(writer);
    const c = claims();
    audit.issued({ clientAddress: '10.1.2.3', userAgent: 'curl/8' }, { grantType: 'client_credentials', keyId: c.sub, deployment: c.deployment }, c,
      Date.parse('2030-01-01T00:00:00Z'));
    await audit.close();
    expect(lines(path)).toEqual([{
      apiVersion: 'audit.apikeys.dev/v1', kind: 'TokenRequest', time: '2030-01-01T00:00:00.000Z', outcome: 'issued', status: 200,
      grantType: 'client_credentials', clientAddress: '10.1.2.3', userAgent: 'curl/8', keyId: c.sub, subject: c.sub, clientId: c.sub,
      deployment: 'team/airflow', audience: ['https://api.test'], scope: 'deploy read', jti: c.jti, expiresAt: '2030-01-01T01:00:00.000Z',
    }]);
    expect(readFileSync(path, 'utf8')).not.toContain('fp-secretish');
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('of a refusal has the error and bounded reason; a hostile User-Agent is cut, escaped to ASCII, and a secret in it masked', async () => {
    const path = join(dir, 'audit.log');
    const audit = new TokenAudit(new AuditWriter({ path, maxSizeBytes: 0, maxBackups: 0, log }));
    const secret = `aks_${'A'.repeat(49)}`;
    const ua = `evil\n{"outcome":"issued"}\u2028\u001b[31m ${secret} ${'x'.repeat(1000)}`;
    audit.refused({ clientAddress: '::1', userAgent: ua }, { grantType: 'client_credentials', keyId: 'ak_aaaaaaaaaaaaaaaaaaaaaaaaaa' },
      new InvalidClient('client authentication failed', 'wrong_secret'), Date.now());
    audit.refused({ clientAddress: '::1', userAgent: undefined }, {}, new SlowDown(3), Date.now());
    audit.refused({ clientAddress: '::1', userAgent: undefined }, {}, new Error('boom'), Date.now());
    await audit.close();
    const text = readFileSync(path, 'utf8');
    expect(text).toMatch(/^[\x20-\x7e\n]+$/);
    expect(text.split('\n').filter(Boolean)).toHaveLength(3);
    expect(text).not.toContain(secret);
    const [wrong, slow, crash] = lines(path) as Record<string, unknown>[];
    expect(wrong).toMatchObject({ outcome: 'refused', status: 401, error: 'invalid_client', reason: 'wrong_secret', keyId: 'ak_aaaaaaaaaaaaaaaaaaaaaaaaaa' });
    expect((wrong!.userAgent as string).length).toBeLessThanOrEqual(USER_AGENT_MAX + 3);
    // eslint-disable-next-line no-control-regex
    expect(wrong!.userAgent).toMatch(/^evil\n\{"outcome":"issued"\}\u2028\u001b\[31m aks_\[REDACTED\] x+\.\.\.$/);
    expect(slow).toMatchObject({ status: 429, error: 'slow_down', reason: 'rate_limited' });
    expect(crash).toMatchObject({ status: 500, error: 'server_error', reason: 'server_error' });
  });

  it('asciiJson escapes everything outside printable ASCII and stays valid JSON', () => {
    const s = asciiJson({ a: 'é\u2028\ud800x\u0000' });
    expect(s).toMatch(/^[\x20-\x7e]+$/);
    expect(JSON.parse(s)).toEqual({ a: 'é\u2028\ud800x\u0000' });
  });
});

describe('the audit stream', () => {
  it('rotates by size into time-stamped backups, keeps maxBackups, and loses no record', async () => {
    const path = join(dir, 'audit.log');
    const writer = new AuditWriter({ path, maxSizeBytes: 1000, maxBackups: 3, log });
    await writer.init();
    for (let i = 0; i < 100; i++) writer.write(JSON.stringify({ i, pad: 'p'.repeat(60) }));
    await writer.flush();
    for (let i = 100; i < 120; i++) writer.write(JSON.stringify({ i, pad: 'p'.repeat(60) }));
    await writer.close();
    const files = readdirSync(dir).sort();
    expect(files).toHaveLength(4);
    expect(files.slice(0, 3).every((f) => /^audit-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log$/.test(f))).toBe(true);
    for (const f of files) expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(1000);
    // The oldest backups went; what is left is the newest records, in order, each once.
    const kept = [...files.slice(0, 3), 'audit.log'].flatMap((f) => lines(join(dir, f)) as { i: number }[]).map((r) => r.i);
    expect(kept.at(-1)).toBe(119);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, k) => 120 - kept.length + k));
  });

  it('drops and counts records beyond its queue instead of growing without bound, and writes the rest', async () => {
    const path = join(dir, 'audit.log');
    const seen = { written: 0, dropped: 0 };
    const writer = new AuditWriter({ path, maxSizeBytes: 0, maxBackups: 0, maxQueuedBytes: 10_000, log,
      observe: (r, n) => { seen[r] += n; } });
    let accepted = 0;
    // In one tick, as a burst of requests would: the drain has had no chance to run.
    for (let i = 0; i < 1000; i++) if (writer.write(JSON.stringify({ i, pad: 'p'.repeat(80) }))) accepted++;
    await writer.close();
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(1000);
    expect(seen).toEqual({ written: accepted, dropped: 1000 - accepted });
    expect(lines(path)).toHaveLength(accepted);
  });

  it('refuses a path it cannot open with a clear error', () => {
    expect(() => new AuditWriter({ path: join(dir, 'missing', 'audit.log'), maxSizeBytes: 0, maxBackups: 0, log }))
      .toThrow(/cannot open the audit log .*missing.*ENOENT/);
  });
});
