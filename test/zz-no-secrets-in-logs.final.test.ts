/**
 * Runs last (test/setup/sequencer.ts): every log line that the suite's
 * processes wrote (controllers, token servers, plugins, the quick start)
 * holds none of the secrets the suite saw, nothing shaped like an API key
 * secret, and no JWT.
 */
import { expect, inject, it } from 'vitest';
import { join } from 'node:path';
import { scanLogs } from './setup/log-scan.ts';

it('no process of the suite logged a secret or a token', () => {
  const r = scanLogs(join(inject('clusterDir'), 'logs'));
  console.log(`${r.lines} log lines in ${r.files} files checked against ${r.secrets} secrets the suite saw`);
  expect(r.findings).toEqual([]);
});
