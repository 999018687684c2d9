/**
 * The benchmark's data, the same for every contender: Deployments and
 * ApiKeys shaped as the controller leaves them, their clients' credentials,
 * and one ES256 signing key.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { ApiKey, Deployment } from '../../src/api/index.ts';
import { DEFAULT_ROTATION, planSigningKeys, type SigningKeySet } from '../../src/shared/signing-keys.ts';
import { apiKeyFixture, deploymentObject } from '../../src/token-server/fixtures.ts';

export const AUDIENCE = 'https://airflow.bench.example';
export const ISSUER = 'http://token.bench.example';

export interface BenchClient { keyId: string; secret: string; deployment: string }

export interface BenchData {
  deployments: Deployment[];
  apiKeys: ApiKey[];
  clients: BenchClient[];
  signingKeys: SigningKeySet;
}

export async function makeData(keys = 1000, deployments = 20): Promise<BenchData> {
  const deps = Array.from({ length: deployments }, (_, i) => deploymentObject(`team-${i}`, 'airflow', { audiences: [AUDIENCE] }));
  const fixtures = Array.from({ length: keys }, (_, i) => apiKeyFixture(deps[i % deployments]!, `ci-${i}`));
  return {
    deployments: deps,
    apiKeys: fixtures.map((f) => f.apiKey),
    clients: fixtures.map((f) => ({ keyId: f.keyId, secret: f.secret, deployment: `${f.apiKey.metadata.namespace}/airflow` })),
    signingKeys: await planSigningKeys(undefined, DEFAULT_ROTATION),
  };
}

export function writeData(file: string, data: BenchData): void {
  writeFileSync(file, JSON.stringify(data), { mode: 0o600 });
}

export function readData(file: string): BenchData {
  return JSON.parse(readFileSync(file, 'utf8')) as BenchData;
}

/** Every contender prints this line once it listens. */
export function announce(port: number): void {
  process.stdout.write(`READY ${port}\n`);
}

/** Starts a server script pinned to CPU 0 (taskset -c 0); resolves once it announced its port. */
export function startPinnedServer(script: string, args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn('taskset', ['-c', '0', process.execPath, script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_ENV: 'production' },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}: ${out}`)));
  });
}
