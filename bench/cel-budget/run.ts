/**
 * The CEL budget, measured (on demand, never part of npm test):
 *
 *   node_modules/.bin/node bench/cel-budget/run.ts [--duration 10] [--connections 16] [--attackers 4]
 *
 * 1. For each of the costliest claims expressions the CRD admits
 *    (test/support/cel-worst.ts), with the largest claims a token can carry: its estimated
 *    cost, what a run spends, and the time of one evaluation (median, p99
 *    and max of 200, after a warm-up), in this process.
 * 2. A bounded load test on loopback: the token server (its own process,
 *    pinned to CPU 0) serves other tenants' client_credentials from
 *    autocannon (pinned to CPU 1), first alone, then while an attacker's
 *    federated exchanges arrive, each evaluating the costliest expression
 *    (throttling off). The figure is the other tenants' p99 in both phases.
 *
 * Results go to stdout as Markdown (docs/security/model.md, "CEL budget").
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon, { type Request, type Result } from 'autocannon';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { celBudget, compileClaimsExpression, COST_LIMIT } from '../../src/federation/claims-expression.ts';
import { AUDIENCE, ISSUER, makeData, startPinnedServer, writeData } from '../token-endpoint/data.ts';
import { WORST_CASES } from '../../test/support/cel-worst.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    attackers: { type: 'string', default: '4' },
  },
});
const DURATION = Number(values.duration);
const CI_ISSUER = 'https://ci.bench.example';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function evaluations(): { name: string; length: number; cost: number; spent: number; median: number; p99: number; max: number }[] {
  return Object.entries(WORST_CASES).map(([name, { expression, claims }]) => {
    const c = compileClaimsExpression(expression);
    if (!c.ok) throw new Error(`${name}: ${c.error}`);
    for (let i = 0; i < 50; i++) c.matches(claims);
    const times: number[] = [];
    let spent = 0;
    for (let i = 0; i < 200; i++) {
      const budget = celBudget();
      const t = performance.now();
      c.matches(claims, budget);
      times.push(performance.now() - t);
      spent = celBudget().remaining - budget.remaining;
    }
    times.sort((a, b) => a - b);
    return { name, length: expression.length, cost: c.cost, spent, median: percentile(times, 0.5), p99: percentile(times, 0.99), max: times.at(-1)! };
  });
}

const startServer = (dataFile: string, attackFile: string) => startPinnedServer(join(import.meta.dirname, 'servers', 'attacked.ts'), [dataFile, attackFile]);

const load = (url: string, requests: Request[], connections: number): Promise<Result> =>
  autocannon({ url, connections, pipelining: 1, duration: DURATION, requests });

async function main(): Promise<void> {
  if (availableParallelism() < 2) throw new Error('the benchmark needs two CPUs: one for the server, one for the load');
  const evals = evaluations();
  execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' });
  const worst = evals.reduce((a, b) => (b.median > a.median ? b : a));
  const worstCase = WORST_CASES[worst.name]!;
  const dir = mkdtempSync(join(tmpdir(), 'cel-bench-'));
  const data = await makeData(200, 10);
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  writeData(join(dir, 'data.json'), data);
  writeFileSync(join(dir, 'attack.json'), JSON.stringify({ jwk: { ...await exportJWK(publicKey), kid: 'ci', alg: 'ES256' }, expressions: [worstCase.expression] }));
  const now = Math.floor(Date.now() / 1000);
  const subjectToken = await new SignJWT({ sub: 'repo:attacker/x:ref:refs/heads/main', aud: ISSUER, ...worstCase.claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'ci' }).setIssuer(CI_ISSUER).setIssuedAt(now).setExpirationTime(now + 3000).sign(privateKey);
  // Other tenants: every Deployment but the attacker's (the first).
  const tenants = data.clients.filter((c) => c.deployment !== `${data.deployments[0]!.metadata.namespace}/airflow`).slice(0, 100);
  const clientCredentials: Request[] = tenants.map((c) => ({
    method: 'POST', path: '/oauth/token', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: c.keyId, client_secret: c.secret, audience: AUDIENCE, grant_type: 'client_credentials' }),
  }));
  const exchange: Request[] = [{
    method: 'POST', path: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      deployment: `${data.deployments[0]!.metadata.namespace}/airflow`,
    }).toString(),
  }];
  const load0 = loadavg()[0]!;
  const { child, port } = await startServer(join(dir, 'data.json'), join(dir, 'attack.json'));
  try {
    const url = `http://127.0.0.1:${port}`;
    const probe = await fetch(url + exchange[0]!.path!, { method: 'POST', headers: exchange[0]!.headers, body: exchange[0]!.body });
    if (probe.status !== 200) throw new Error(`the attacker's exchange answered ${probe.status}: ${await probe.text()}`);
    await load(url, clientCredentials, Number(values.connections));
    const alone = await load(url, clientCredentials, Number(values.connections));
    const [attacked, attacks] = await Promise.all([
      load(url, clientCredentials, Number(values.connections)),
      load(url, exchange, Number(values.attackers)),
    ]);
    console.log(`Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}; COST_LIMIT ${COST_LIMIT}; load average ${load0.toFixed(2)} before, ` +
      `${loadavg()[0]!.toFixed(2)} after (a shared machine: other work inflates the tails)\n`);
    console.log('| costliest admitted expression | length | estimated cost | spent | median ms | p99 ms | max ms |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const e of evals) {
      console.log(`| ${e.name} | ${e.length} | ${e.cost} | ${e.spent} | ${e.median.toFixed(2)} | ${e.p99.toFixed(2)} | ${e.max.toFixed(2)} |`);
    }
    console.log(`\nLoad: ${values.connections} connections of other tenants' client_credentials for ${DURATION}s; then the same while ` +
      `${values.attackers} connections send federated exchanges evaluating "${worst.name}".\n`);
    console.log('| phase | client_credentials/s | p50 ms | p99 ms | max ms | exchanges/s | exchange p99 ms | non-2xx |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    const row = (name: string, r: Result, x?: Result) => console.log(`| ${name} | ${Math.round(r['2xx'] / DURATION)} | ${r.latency.p50} | ${r.latency.p99} | ` +
      `${r.latency.max} | ${x ? Math.round(x['2xx'] / DURATION) : '-'} | ${x ? x.latency.p99 : '-'} | ${r.non2xx + (x?.non2xx ?? 0)} |`);
    row('alone', alone);
    row('under attack', attacked, attacks);
  } finally {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
