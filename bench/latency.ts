/**
 * The token server's latency under load as it runs in a cluster: the
 * Kubernetes-backed server (its keys from the apiserver's watches, however
 * many) against the limit server (bench/token-endpoint/servers/limit.ts: a
 * bare node:http server that does only the lookup, SHA-256 and one ES256
 * signature) holding the same keys, in the same run. Each server runs pinned
 * to CPU 0, the load (autocannon, in this process) on CPU 1, `connections`
 * connections, the two taking turns for `rounds` rounds so that a burst of
 * other work does not decide the comparison; every request presents a real
 * key id and secret, cycling through `clients` (up to 100 keys spread over
 * the whole range), and is answered with a 24 h ES256 JWT, checked with
 * jose before the measurement. bench:scale calls it once every key is Ready.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon, { type Request, type Result } from 'autocannon';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { ApiKey } from '../src/api/index.ts';
import { DEFAULT_ROTATION, planSigningKeys } from '../src/shared/signing-keys.ts';
import { pin } from './support.ts';
import { startPinnedServer, writeData, type BenchData } from './token-endpoint/data.ts';

export interface LatencyClient { keyId: string; secret: string; audience: string }

export interface LatencyRun { rps: number; p50: number; p99: number; failed: number }

export interface LatencyResult {
  limit: LatencyRun[];
  ours: LatencyRun[];
  /** Best round by p99 of each, and ours over the limit's. */
  bestP99: { limit: number; ours: number; ratio: number };
  /** Median p99 of each, and ours over the limit's. */
  medianP99: { limit: number; ours: number; ratio: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function requests(clients: LatencyClient[]): Request[] {
  return clients.map((c) => ({
    method: 'POST', path: '/oauth/token', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: c.keyId, client_secret: c.secret, audience: c.audience, grant_type: 'client_credentials' }),
  }));
}

/** One real request whose token verifies against the server's own JWKS: each server is measured doing the real thing. */
async function check(url: string, req: Request, issuer: string): Promise<void> {
  const r = await fetch(url + req.path!, { method: 'POST', headers: req.headers, body: req.body });
  const body = await r.json() as { access_token?: string };
  if (r.status !== 200 || !body.access_token) throw new Error(`${url}: ${r.status} ${JSON.stringify(body)}`);
  const jwks = createRemoteJWKSet(new URL(`${url}/.well-known/jwks.json`));
  const { payload, protectedHeader } = await jwtVerify(body.access_token, jwks, { issuer });
  if (protectedHeader.alg !== 'ES256' || payload.exp! - payload.iat! !== 86400) throw new Error(`${url}: unexpected token ${JSON.stringify(payload)}`);
}

async function measure(url: string, reqs: Request[], connections: number, warmup: number, duration: number): Promise<LatencyRun> {
  const run = (d: number): Promise<Result> => autocannon({ url, connections, pipelining: 1, duration: d, requests: reqs });
  await run(warmup);
  const r = await run(duration);
  return { rps: Math.round(r['2xx'] / duration), p50: r.latency.p50, p99: r.latency.p99, failed: r.non2xx + r.errors + r.timeouts };
}

/**
 * Measures the Kubernetes-backed token server (`ours`, already serving every
 * key in `apiKeys`; `oursPid` its process) against the limit server given
 * the same keys.
 */
export async function latencyAgainstLimit(opts: {
  ours: { url: string; pid: number; issuer: string };
  apiKeys: ApiKey[];
  clients: LatencyClient[];
  connections?: number; rounds?: number; warmup?: number; duration?: number;
  log?: (line: string) => void;
}): Promise<LatencyResult> {
  const { connections = 32, rounds = 3, warmup = 3, duration = 10, log = () => undefined } = opts;
  const dir = mkdtempSync(join(tmpdir(), 'latency-bench-'));
  const dataFile = join(dir, 'data.json');
  // The limit server reads keys as the controller leaves them (status.keyId, status.secretHash) and signs with a key of its own.
  const data: BenchData = {
    deployments: [], clients: [], signingKeys: await planSigningKeys(undefined, DEFAULT_ROTATION),
    apiKeys: opts.apiKeys.filter((k) => k.status?.keyId && k.status.secretHash).map((k) => ({
      apiVersion: k.apiVersion, kind: k.kind, metadata: { name: k.metadata.name, namespace: k.metadata.namespace },
      spec: { deploymentRef: k.spec.deploymentRef }, status: { keyId: k.status!.keyId, secretHash: k.status!.secretHash },
    })),
  };
  writeData(dataFile, data);
  const reqs = requests(opts.clients);
  const limit = await startPinnedServer(join(import.meta.dirname, 'token-endpoint', 'servers', 'limit.ts'), [dataFile]);
  const limitUrl = `http://127.0.0.1:${limit.port}`;
  const result: { limit: LatencyRun[]; ours: LatencyRun[] } = { limit: [], ours: [] };
  try {
    // The limit server answers the first request only; jose cannot fetch a JWKS from it, so its token is checked by shape.
    const first = await fetch(limitUrl + reqs[0]!.path!, { method: 'POST', headers: reqs[0]!.headers, body: reqs[0]!.body });
    if (first.status !== 200) throw new Error(`the limit server refused a real key: ${first.status} ${await first.text()}`);
    await check(opts.ours.url, reqs[0]!, opts.ours.issuer);
    pin(opts.ours.pid, '0');
    pin(process.pid, '1');
    for (let round = 1; round <= rounds; round++) {
      for (const [name, url] of [['limit', limitUrl], ['ours', opts.ours.url]] as const) {
        const run = await measure(url, reqs, connections, warmup, duration);
        result[name].push(run);
        log(`  latency round ${round}: ${name === 'limit' ? 'limit server' : 'token server (Kubernetes-backed)'}: ` +
          `${run.rps} tokens/s, p50 ${run.p50} ms, p99 ${run.p99} ms, ${run.failed} failed`);
      }
    }
  } finally {
    pin(process.pid, '0,1');
    try { pin(opts.ours.pid, '0,1'); } catch { /* it may have stopped */ }
    limit.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  const bestL = Math.min(...result.limit.map((r) => r.p99));
  const bestO = Math.min(...result.ours.map((r) => r.p99));
  const medL = median(result.limit.map((r) => r.p99));
  const medO = median(result.ours.map((r) => r.p99));
  return {
    ...result,
    bestP99: { limit: bestL, ours: bestO, ratio: bestO / bestL },
    medianP99: { limit: medL, ours: medO, ratio: medO / medL },
  };
}
