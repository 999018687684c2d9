/**
 * Token endpoint benchmark, on demand (never part of npm test):
 *
 *   node_modules/.bin/node bench/token-endpoint/run.ts [--rounds 3] [--duration 10] [--connections 32] [--keys 1000]
 *
 * Each contender runs alone, as its own process pinned to CPU 0 (taskset -c 0);
 * the load comes from autocannon in this process, pinned to CPU 1. Every
 * contender serves the same keys and signing key; every request presents a
 * real key id and secret (cycling through 100 of them) and gets a 24h ES256
 * JWT, checked with jose before the measurement. The contenders take turns
 * for several rounds, and each one's best round is reported (with the
 * median), so that a burst of other work on a shared machine does not decide
 * the comparison. Results go to stdout as a Markdown table (paste into
 * docs/development/benchmarks.md) and as JSON. One contender signs through
 * PKCS#11 with a SoftHSM token of its own (servers/ours-pkcs11.ts; needs
 * softhsm2): the table's "of the limit" column and the PKCS#11 line below it
 * give its ratio to the in-process signer. The DPoP contender is the same
 * server asked for DPoP-bound tokens: every request carries a proof with a
 * jti of its own (the server refuses replays), taken from a pool made before
 * the measurement (so the client's signing is not what is measured), of at
 * most DPOP_POOL proofs; a request beyond the pool would be a replay, and
 * counts as failed.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon, { type Request, type Result } from 'autocannon';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { AUDIENCE, ISSUER, makeData, startPinnedServer, writeData, type BenchData } from './data.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    keys: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
  },
});
const ROUNDS = Number(values.rounds);
const DURATION = Number(values.duration);
const WARMUP = Number(values.warmup);
const CONNECTIONS = Number(values.connections);

interface Contender {
  name: string;
  file: string;
  body: 'json' | 'form';
  /** Verify its tokens against its own /.well-known/jwks.json (its key is not the shared data's). */
  ownJwks?: boolean;
  /** Ask for DPoP-bound tokens: a fresh proof on every request. */
  dpop?: boolean;
}

const CONTENDERS: Contender[] = [
  { name: 'limit: bare node:http, lookup + SHA-256 + one ES256 signature', file: 'limit.ts', body: 'json' },
  { name: 'apikey-operator token server (JSON body, the seed\'s request)', file: 'ours.ts', body: 'json' },
  { name: 'apikey-operator token server, DPoP-bound, ES256 proofs (JSON body)', file: 'ours.ts', body: 'json', dpop: true },
  { name: 'apikey-operator token server (form body)', file: 'ours.ts', body: 'form' },
  { name: 'apikey-operator token server, ES256 key in SoftHSM through PKCS#11 (JSON body)', file: 'ours-pkcs11.ts', body: 'json', ownJwks: true },
  { name: 'oidc-provider 9, client credentials, JWT access tokens (form body)', file: 'oidc-provider.ts', body: 'form' },
];

function requests(data: BenchData, format: 'json' | 'form'): Request[] {
  return data.clients.slice(0, 100).map((c) => format === 'json'
    ? {
      method: 'POST', path: '/oauth/token', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: c.keyId, client_secret: c.secret, audience: AUDIENCE, grant_type: 'client_credentials' }),
    }
    : {
      method: 'POST', path: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.keyId, client_secret: c.secret, resource: AUDIENCE }).toString(),
    });
}

/**
 * The most proofs made for one measurement (warm-up and run), about 80 MB.
 * Fewer are made when the bearer contender just before did fewer tokens a
 * second (twice its rate for the whole measurement): the proofs must still
 * be fresh (iat within a minute) when the last one is sent.
 */
const DPOP_POOL = 150_000;

/** `count` DPoP proofs of one ES256 key for the token endpoint, each with its own jti, iat now. */
function dpopProofs(count: number): string[] {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const header = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: publicKey.export({ format: 'jwk' }) })).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  const prefix = randomBytes(8).toString('base64url');
  const proofs: string[] = [];
  for (let i = 0; i < count; i++) {
    const payload = Buffer.from(JSON.stringify({ jti: `${prefix}-${i}`, htm: 'POST', htu: `${ISSUER}/oauth/token`, iat })).toString('base64url');
    const input = `${header}.${payload}`;
    proofs.push(`${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`);
  }
  return proofs;
}

/** The requests with a DPoP header taken in turn from `proofs`, across all connections (autocannon's setupRequest). */
function withProofs(reqs: Request[], proofs: string[]): Request[] {
  let next = 0;
  return reqs.map((r) => ({ ...r, setupRequest: (req: Request) => ({ ...req, headers: { ...req.headers, dpop: proofs[next++ % proofs.length]! } }) }));
}

function startServer(file: string, dataFile: string): Promise<{ child: ChildProcess; port: number }> {
  return startPinnedServer(join(import.meta.dirname, 'servers', file), [dataFile]);
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

/** One real request, its token verified, so that every contender is measured doing the real thing. */
async function check(url: string, req: Request, data: BenchData, ownJwks = false, dpop = false): Promise<void> {
  const headers = dpop ? { ...req.headers, dpop: dpopProofs(1)[0]! } : req.headers;
  const r = await fetch(url + req.path!, { method: 'POST', headers, body: req.body });
  const body = await r.json() as { access_token?: string; token_type?: string };
  if (dpop && body.token_type !== 'DPoP') throw new Error(`${url}: not a DPoP-bound token: ${JSON.stringify(body)}`);
  if (r.status !== 200 || !body.access_token) throw new Error(`${url}: ${r.status} ${JSON.stringify(body)}`);
  const jwks = ownJwks
    ? await (await fetch(`${url}/.well-known/jwks.json`)).json() as JSONWebKeySet
    : { keys: [data.signingKeys.keys[0]!.publicJwk] };
  const { payload, protectedHeader } = await jwtVerify(body.access_token, createLocalJWKSet(jwks), {
    issuer: ISSUER, audience: AUDIENCE,
  });
  if (protectedHeader.alg !== 'ES256' || payload.exp! - payload.iat! !== 86400) throw new Error(`${url}: unexpected token ${JSON.stringify(payload)}`);
}

/** CPU time (user + system) a process has used, in µs, from /proc: robust against other work on the machine. */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  // After the command: state is field 3, utime 14 and stime 15 (1-based over the whole line).
  return (Number(fields[11]) + Number(fields[12])) * (1e6 / CLOCK_TICKS);
}
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

function load(url: string, reqs: Request[], duration: number): Promise<Result> {
  return autocannon({ url, connections: CONNECTIONS, pipelining: 1, duration, requests: reqs });
}

async function main(): Promise<void> {
  if (availableParallelism() < 2) throw new Error('the benchmark needs two CPUs: one for the server, one for the load');
  // The load generator (this process, all its threads) on CPU 1; servers on CPU 0.
  execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'token-bench-'));
  const dataFile = join(dir, 'data.json');
  const data = await makeData(Number(values.keys));
  writeData(dataFile, data);
  interface Run { rps: number; p50: number; p99: number; failed: number; cpu: number }
  const runs = new Map<Contender, Run[]>(CONTENDERS.map((c) => [c, []]));
  const load0 = loadavg()[0]!;
  let bearerRps = 0;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of CONTENDERS) {
        const { child, port } = await startServer(c.file, dataFile);
        try {
          const url = `http://127.0.0.1:${port}`;
          const plain = requests(data, c.body);
          await check(url, plain[0]!, data, c.ownJwks, c.dpop);
          const pool = Math.min(DPOP_POOL, Math.ceil(2 * (bearerRps || DPOP_POOL) * (WARMUP + DURATION)));
          const reqs = c.dpop ? withProofs(plain, dpopProofs(pool)) : plain;
          await load(url, reqs, WARMUP);
          const cpu0 = cpuMicros(child.pid!);
          const r = await load(url, reqs, DURATION);
          const cpu = (cpuMicros(child.pid!) - cpu0) / Math.max(1, r['2xx']);
          const run = {
            rps: Math.round(r['2xx'] / DURATION), p50: r.latency.p50, p99: r.latency.p99, failed: r.non2xx + r.errors + r.timeouts, cpu,
          };
          runs.get(c)!.push(run);
          if (c.name.startsWith('apikey-operator token server (JSON')) bearerRps = run.rps;
          process.stderr.write(`round ${round}: ${c.name}: ${run.rps} tokens/s, p99 ${run.p99} ms, ${run.cpu.toFixed(0)} µs CPU/token\n`);
        } finally {
          await stopServer(child);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const best = (c: Contender) => runs.get(c)!.reduce((a, b) => (b.rps > a.rps ? b : a));
  const median = (c: Contender) => [...runs.get(c)!].sort((a, b) => a.rps - b.rps)[Math.floor(ROUNDS / 2)]!;
  const limit = best(CONTENDERS[0]!).rps;
  console.log(`Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}; server on 1 core (taskset -c 0), ` +
    `autocannon on the other; ${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION}s after ${WARMUP}s warm-up, ` +
    `${values.keys} keys; load average ${load0.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after\n`);
  console.log('| contender | tokens/s (best round) | p50 ms | p99 ms | of the limit | tokens/s (median) | server CPU µs/token (median) | of the limit, by CPU | failed |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const cpuMedian = (c: Contender) => [...runs.get(c)!].sort((a, b) => a.cpu - b.cpu)[Math.floor(ROUNDS / 2)]!.cpu;
  const limitCpu = cpuMedian(CONTENDERS[0]!);
  const rows = CONTENDERS.map((c) => ({ name: c.name, best: best(c), median: median(c), all: runs.get(c)! }));
  for (const r of rows) {
    const cpu = cpuMedian(CONTENDERS.find((c) => c.name === r.name)!);
    console.log(`| ${r.name} | ${r.best.rps} | ${r.best.p50} | ${r.best.p99} | ${(r.best.rps / limit).toFixed(2)} | ${r.median.rps} | ` +
      `${cpu.toFixed(0)} | ${(limitCpu / cpu).toFixed(2)} | ${r.all.reduce((n, x) => n + x.failed, 0)} |`);
  }
  const inProcess = rows.find((r) => r.name.startsWith('apikey-operator token server (JSON'));
  const pkcs11 = rows.find((r) => r.name.includes('PKCS#11'));
  const dpop = rows.find((r) => r.name.includes('DPoP'));
  if (inProcess && dpop) {
    console.log(`\nDPoP-bound / bearer (JSON body), best rounds: ${(dpop.best.rps / inProcess.best.rps).toFixed(2)} ` +
      `(${dpop.best.rps} / ${inProcess.best.rps} tokens/s); p99 ${dpop.best.p99} ms vs ${inProcess.best.p99} ms`);
  }
  if (inProcess && pkcs11) {
    console.log(`\nPKCS#11 (SoftHSM) / in-process signing, best rounds: ${(pkcs11.best.rps / inProcess.best.rps).toFixed(2)} ` +
      `(${pkcs11.best.rps} / ${inProcess.best.rps} tokens/s); p99 ${pkcs11.best.p99} ms vs ${inProcess.best.p99} ms`);
  }
  console.log(`\n${JSON.stringify({ node: process.version, cpu: cpus()[0]?.model, rows })}`);
}

await main();
