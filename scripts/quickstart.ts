/**
 * npm start: the operator end to end on a local control plane.
 *
 *   npm start                          local control plane in .cluster/quickstart
 *   npm start -- --kubeconfig PATH     an existing cluster (kind, k3d, ...) instead
 *   npm start -- --exit-after-token    stop once the token is shown (CI, tests)
 *
 * It starts the control plane (building it first if needed), installs the
 * CRDs and the chart's ServiceAccounts, RBAC and admission policies, runs the
 * controller and the token server as processes with those ServiceAccounts' tokens, applies the
 * example Deployment and ApiKey, prints the key id and the curl that fetches
 * a token, fetches one and shows its claims, starts the web console and prints
 * its sign-in URL, then stays up until Ctrl-C.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { parseAllDocuments } from 'yaml';
import { binaryPaths, ensureBinaries, missingModules } from '../test/cluster/binaries.ts';
import { bearerTokenKubeconfig, down, freePort, isRunning, readState, up } from '../test/cluster/controlplane.ts';
import { CRD_FILES } from '../test/support/paths.ts';
import { chartIdentityObjects } from './render-manifests.ts';

const exec = promisify(execFile);
const root = join(import.meta.dirname, '..');
const OPERATOR_NS = 'apikey-operator';
const EXAMPLE_NS = 'default';

const { values: args } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    dir: { type: 'string', default: join(root, '.cluster', 'quickstart') },
    yes: { type: 'boolean', short: 'y', default: false },
    'exit-after-token': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const say = (s = '') => process.stdout.write(`${s}\n`);
const step = (s: string) => say(`\n==> ${s}`);

if (args.help) {
  say(readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 17).map((l) => l.replace(/^ \* ?/, '')).join('\n'));
  process.exit(0);
}

const children: ChildProcess[] = [];
let clusterDir: string | undefined;
let stopping = false;

async function cleanup(code: number): Promise<never> {
  if (stopping) process.exit(code);
  stopping = true;
  step('Stopping');
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.filter((c) => c.exitCode === null).map((c) => new Promise((r) => c.once('exit', r))));
  if (clusterDir) {
    await down(clusterDir);
    say(`stopped the local control plane in ${clusterDir}`);
  }
  process.exit(code);
}
process.on('SIGINT', () => { void cleanup(0); });
process.on('SIGTERM', () => { void cleanup(0); });

async function kubectl(kubeconfig: string, argv: string[], input?: string): Promise<string> {
  const p = exec(binaryPaths().kubectl, ['--kubeconfig', kubeconfig, ...argv], { maxBuffer: 32 * 1024 * 1024 });
  if (input !== undefined) p.child.stdin?.end(input);
  return (await p).stdout;
}

function startProgram(name: string, argv: string[], logDir: string): ChildProcess {
  const log = join(logDir, `${name}.log`);
  const out = createWriteStream(log, { flags: 'a' });
  const child = spawn(process.execPath, [join(root, 'src/cli/main.ts'), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  child.on('exit', (code) => {
    if (!stopping) {
      process.stderr.write(`\n${name} exited (${code}); its log is ${log}\n`);
      void cleanup(1);
    }
  });
  children.push(child);
  say(`${name}: pid ${child.pid}, log ${log}`);
  return child;
}

/**
 * The console (apikey-operator console) with the admin's kubeconfig: its one-time sign-in URL,
 * the line of its stdout that starts with http://127.0.0.1:.
 */
async function startConsole(kubeconfig: string, tokenUrl: string, logDir: string): Promise<string> {
  const child = startProgram('console', ['console', '--kubeconfig', kubeconfig, '--token-url', tokenUrl, '--namespace', EXAMPLE_NS], logDir);
  let out = '';
  const end = Date.now() + 30_000;
  child.stdout!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
  for (;;) {
    const m = /^http:\/\/127\.0\.0\.1:\S+$/m.exec(out);
    if (m) return m[0];
    if (Date.now() > end) throw new Error('the console printed no sign-in URL within 30s');
    await sleep(50);
  }
}

async function waitHttp(url: string, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { if ((await fetch(url)).ok) return; } catch { /* starting */ }
    await sleep(100);
  }
  throw new Error(`${what} did not become ready (${url})`);
}

async function serviceAccountToken(kubeconfig: string, sa: string): Promise<string> {
  return (await kubectl(kubeconfig, ['create', 'token', sa, '-n', OPERATOR_NS, '--duration', '24h'])).trim();
}

function tokenKubeconfig(admin: string, token: string, file: string): string {
  // Same cluster stanza as the admin kubeconfig, authenticated only by the ServiceAccount token.
  const doc = parseAllDocuments(readFileSync(admin, 'utf8'))[0]!.toJS() as {
    clusters: { name: string; cluster: Record<string, unknown> }[];
    contexts: { name: string; context: { cluster: string } }[];
    'current-context': string;
  };
  const ctx = doc.contexts.find((c) => c.name === doc['current-context']) ?? doc.contexts[0]!;
  const cluster = doc.clusters.find((c) => c.name === ctx.context.cluster)!.cluster;
  writeFileSync(file, bearerTokenKubeconfig({ cluster, token, user: 'sa', namespace: OPERATOR_NS }), { mode: 0o600 });
  return file;
}

async function confirm(question: string): Promise<boolean> {
  if (args.yes) return true;
  if (!process.stdin.isTTY) {
    say('Not a terminal: pass --yes to go ahead.');
    return false;
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await rl.question(`${question} [y/N] `);
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

async function main(): Promise<void> {
  let kubeconfig: string;
  let workDir: string;
  if (args.kubeconfig) {
    kubeconfig = args.kubeconfig;
    if (!existsSync(kubeconfig)) throw new Error(`kubeconfig ${kubeconfig} does not exist`);
    workDir = join(root, '.cluster', 'external');
    const ctx = (await exec('kubectl', ['--kubeconfig', kubeconfig, 'config', 'current-context']).catch(() => ({ stdout: '?' }))).stdout.trim();
    step(`Using the existing cluster of ${kubeconfig} (context ${ctx})`);
    say('This will install there:');
    say('  - the CRDs deployments.apikeys.dev, apikeys.apikeys.dev, federatedcredentials.apikeys.dev and audienceclaims.apikeys.dev (from crds/)');
    say(`  - namespace ${OPERATOR_NS} with the chart's ServiceAccounts, ClusterRoles, Roles and bindings`);
    say('  - the chart\'s ValidatingAdmissionPolicies and their bindings (cluster-wide)');
    say(`  - the example Deployment airflow-prod and ApiKey ci-deployer in namespace ${EXAMPLE_NS} (manifests/examples/)`);
    say('and run the controller and the token server here, as processes, with those ServiceAccounts.');
    if (!(await confirm('Go ahead?'))) process.exit(1);
    if (missingModules().length) await ensureBinaries((l) => say(`    ${l}`));
  } else {
    const missing = missingModules();
    if (missing.length) {
      step(`The local control plane is not built yet (${missing.join(', ')})`);
      say('It is built once from Go modules and cached; the first build takes several minutes');
      say('(10-20 on 2 cores). Progress follows; later runs start in seconds.');
    }
    workDir = args.dir!;
    const old = readState(workDir);
    if (old?.processes.some(isRunning)) await down(workDir);
    step('Starting a local control plane (etcd, kube-apiserver, kube-controller-manager)');
    clusterDir = workDir;
    // The CRDs go in before the controller-manager starts, so that its garbage collector knows
    // them from its first discovery.
    const state = await up(workDir, { crds: CRD_FILES, log: (l) => say(`    ${l}`) });
    kubeconfig = state.kubeconfig;
    say(`kubectl and helm were built with it: ${binaryPaths().kubectl}, ${binaryPaths().helm}`);
  }
  mkdirSync(workDir, { recursive: true });

  step('Installing the CRDs and the chart\'s ServiceAccounts, RBAC and admission policies');
  if (args.kubeconfig) {
    // The local control plane has them already (up() above).
    await kubectl(kubeconfig, ['apply', '--server-side', '--force-conflicts', '-f', join(root, 'crds')]);
    await kubectl(kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/deployments.apikeys.dev', 'crd/apikeys.apikeys.dev']);
  }
  await kubectl(kubeconfig, ['create', 'namespace', OPERATOR_NS]).catch(() => undefined);
  const { stdout: rendered } = await exec(binaryPaths().helm, ['template', 'apikey-operator', join(root, 'charts', 'apikey-operator'),
    '--namespace', OPERATOR_NS, '--set', 'tokenServer.mode=deployment'], { maxBuffer: 16 * 1024 * 1024 });
  const rbac = chartIdentityObjects(parseAllDocuments(rendered).map((d) => d.toJS() as { kind?: string }));
  await kubectl(kubeconfig, ['apply', '-f', '-'], rbac.map((d) => JSON.stringify(d)).join('\n'));
  const controllerKc = tokenKubeconfig(kubeconfig, await serviceAccountToken(kubeconfig, 'apikey-operator-controller'), join(workDir, 'controller.kubeconfig'));
  const tokenKc = tokenKubeconfig(kubeconfig, await serviceAccountToken(kubeconfig, 'apikey-operator-token-server'), join(workDir, 'token-server.kubeconfig'));

  step('Starting the controller and the token server');
  const port = await freePort();
  const health = await freePort();
  const metrics = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const tokenUrl = `${base}/oauth/token`;
  startProgram('controller', ['controller', '--kubeconfig', controllerKc, '--operator-namespace', OPERATOR_NS,
    '--token-url', tokenUrl, '--health-port', String(health)], workDir);
  startProgram('token-server', ['token-server', '--kubeconfig', tokenKc, '--operator-namespace', OPERATOR_NS,
    '--port', String(port), '--metrics-port', String(metrics), '--host', '127.0.0.1', '--issuer', base], workDir);
  await waitHttp(`http://127.0.0.1:${health}/readyz`, 'the controller');
  await waitHttp(`${base}/readyz`, 'the token server');
  say(`token endpoint: ${tokenUrl}    discovery: ${base}/.well-known/oauth-authorization-server`);

  step(`Applying the example Deployment and ApiKey (namespace ${EXAMPLE_NS})`);
  say(await kubectl(kubeconfig, ['apply', '-n', EXAMPLE_NS, '-f', join(root, 'manifests/examples/deployment.yaml'),
    '-f', join(root, 'manifests/examples/apikey-ci.yaml')]));
  await kubectl(kubeconfig, ['wait', '-n', EXAMPLE_NS, '--for=condition=Ready', '--timeout=60s', 'apikey/ci-deployer']);
  say(await kubectl(kubeconfig, ['get', '-n', EXAMPLE_NS, 'apikeys.apikeys.dev,deployments.apikeys.dev']));

  const k = args.kubeconfig ? 'kubectl' : binaryPaths().kubectl;
  step('The key (from Secret ci-deployer)');
  const secret = JSON.parse(await kubectl(kubeconfig, ['get', 'secret', 'ci-deployer', '-n', EXAMPLE_NS, '-o', 'json'])) as { data: Record<string, string> };
  const d = (k: string) => Buffer.from(secret.data[k] ?? '', 'base64').toString('utf8');
  say(`API_KEY_ID=${d('API_KEY_ID')}`);
  say(`API_KEY_SECRET is in the Secret (not printed here): ${k} --kubeconfig ${kubeconfig} get secret ci-deployer -n ${EXAMPLE_NS} -o jsonpath='{.data.API_KEY_SECRET}' | base64 -d`);
  step('Fetching a token, exactly like this:');
  say(`SECRET=$(${k} --kubeconfig ${kubeconfig} get secret ci-deployer -n ${EXAMPLE_NS} -o jsonpath='{.data.API_KEY_SECRET}' | base64 -d)`);
  say(`curl -s -X POST ${tokenUrl} -H 'content-type: application/json' \\`);
  say(`  -d '{"client_id":"${d('API_KEY_ID')}","client_secret":"'"$SECRET"'","audience":"${d('AUDIENCE')}","grant_type":"client_credentials"}' | jq -r .access_token`);
  const res = await fetch(tokenUrl, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: d('API_KEY_ID'), client_secret: d('API_KEY_SECRET'), audience: d('AUDIENCE'), grant_type: 'client_credentials' }),
  });
  const body = await res.json() as { access_token?: string; expires_in?: number; error?: string };
  if (!res.ok || !body.access_token) throw new Error(`the token endpoint answered ${res.status} ${body.error ?? ''}`);
  say(`\nHTTP ${res.status}: a ${body.expires_in}s access token. Its claims:`);
  say(JSON.stringify(decodeJwt(body.access_token), null, 2));

  step('The web console');
  const consoleUrl = await startConsole(kubeconfig, tokenUrl, workDir);
  say('Open this URL in a browser to sign in (it works once), with the kubeconfig\'s identity:');
  say(consoleUrl);

  if (args['exit-after-token']) await cleanup(0);
  step(`Running. Try: ${k} --kubeconfig ${kubeconfig} annotate apikey ci-deployer apikeys.dev/rotate=$(date +%s)`);
  say('Press Ctrl-C to stop everything.');
  await new Promise(() => undefined);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`\nerror: ${(err as Error).message}\n`);
  await cleanup(1);
});
