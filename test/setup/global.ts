/**
 * Vitest global setup for the integration project: one real control plane for
 * the whole run (tests isolate themselves with a namespace each), built or
 * reused by test/cluster, and stopped at the end with no process left behind.
 *
 * APIKEY_OPERATOR_TEST_CLUSTER_DIR=DIR reuses a control plane started with
 * `npm run cluster:up -- --dir DIR` (faster local iterations); it is not stopped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { MissingToolchainError } from '../cluster/binaries.ts';
import { down, readState, up } from '../cluster/controlplane.ts';
import { CRD_FILES } from '../support/paths.ts';
import { scanLogs } from './log-scan.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    clusterDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const reuse = process.env.APIKEY_OPERATOR_TEST_CLUSTER_DIR;
  if (reuse) {
    if (!readState(reuse)) throw new Error(`APIKEY_OPERATOR_TEST_CLUSTER_DIR=${reuse} has no running control plane`);
    project.provide('clusterDir', reuse);
    return () => Promise.resolve(assertLogsClean(reuse));
  }
  const dir = mkdtempSync(join(tmpdir(), 'apikey-operator-test-'));
  try {
    await up(dir, { crds: CRD_FILES, log: (l) => process.stderr.write(`[control-plane] ${l}\n`) });
  } catch (err) {
    if (err instanceof MissingToolchainError) {
      // One clear message, and a failed run: the suite never skips silently.
      process.stderr.write(`\n${err.message}\n\n`);
    }
    throw err;
  }
  project.provide('clusterDir', dir);
  return async () => {
    await down(dir);
    assertLogsClean(dir);
    if (!process.env.APIKEY_OPERATOR_KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  };
}

/** A summary for the run's output; test/zz-no-secrets-in-logs.final.test.ts is what fails the run. */
function assertLogsClean(dir: string): void {
  const r = scanLogs(join(dir, 'logs'));
  process.stderr.write(`[log-scan] ${r.lines} lines in ${r.files} process logs checked against ${r.secrets} secrets seen: ${r.findings.length} findings\n`);
  for (const f of r.findings.slice(0, 50)) process.stderr.write(`[log-scan] ${f}\n`);
}
