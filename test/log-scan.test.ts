import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { generateSecret } from '../src/keys/format.ts';
import { scanLogs } from './setup/log-scan.ts';

it('the teardown log scan finds a seen secret, a secret-shaped string and a JWT, and names only file and line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'scan-'));
  try {
    const seen = 'my-recorded-secret-value-1234';
    writeFileSync(join(dir, 'secrets.seen'), `${seen}\n`);
    writeFileSync(join(dir, 'a.log'), `{"msg":"ok"}\n{"msg":"leak ${seen}"}\n`);
    writeFileSync(join(dir, 'b.log'), `{"msg":"${generateSecret()}"}\n{"t":"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJha19hYmMifQ.c2lnbmF0dXJlc2lnbmF0dXJl"}\n`);
    const r = scanLogs(dir);
    expect(r.findings).toEqual([
      'a.log:2: a secret the suite saw',
      'b.log:1: something shaped like an API key secret',
      'b.log:2: a JWT',
    ]);
    writeFileSync(join(dir, 'a.log'), '{"msg":"clean"}\n');
    writeFileSync(join(dir, 'b.log'), '{"keyId":"ak_aaaaaaaaaaaaaaaaaaaaaaaaaa"}\n');
    expect(scanLogs(dir).findings).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
