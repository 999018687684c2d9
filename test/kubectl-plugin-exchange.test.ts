/**
 * Issue 6 item 3 end to end: `kubectl apikey token --deployment NAME` with a
 * ServiceAccount token in a kubeconfig, against the real token server's
 * RFC 8693 token exchange (issue 6 item 1), on the real control plane.
 *
 * Written against CONTRACT.md ("Temporary user tokens") before the server
 * side landed: until the token server serves the token-exchange grant, these
 * tests fail with "unsupported_grant_type". The client side (what the plugin
 * sends, exec-plugin credentials, the client-certificate refusal) is proven
 * now in test/kubectl-plugin.test.ts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, serviceAccountKubeconfig, type TestNamespace } from './support/cluster.ts';
import { bindTokenRequester, installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { ROOT } from './support/paths.ts';
import { PLUGIN, startController, startTokenServer, type RunningProcess } from './support/processes.ts';
import { createDeployment } from './support/resources.ts';

const AUDIENCE = 'https://airflow.example.test';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

let ns: TestNamespace;
let elsewhere: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: RunningProcess & { url: string };
let jwks: JWTVerifyGetKey;
let dir: string;
let bound: string;
let unbound: string;

interface Run { code: number; stdout: string; stderr: string }

function plugin(args: string[], kubeconfig: string): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env, APIKEY_OPERATOR_TOKEN_URL: `${server.url}/oauth/token`, KUBECONFIG: undefined };
  const child = spawn(process.execPath, [PLUGIN, ...args, '--kubeconfig', kubeconfig], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => {
    child.on('close', (code) => { clearTimeout(killer); resolve({ code: code ?? 1, stdout, stderr }); });
  });
}

beforeAll(async () => {
  ns = await createNamespace('exchange');
  elsewhere = await createNamespace('elsewhere');
  dir = mkdtempSync(join(tmpdir(), 'kubectl-plugin-exchange-'));
  identity = await installOperatorIdentity();
  controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace });
  server = await startTokenServer({ kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace });
  jwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`));
  await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
  await createDeployment(elsewhere.name, 'airflow', { audiences: [AUDIENCE] });
  // The chart's role for people who may get temporary tokens, bound in one namespace only.
  bound = await serviceAccountKubeconfig(ns.name, 'deployer', dir);
  await bindTokenRequester(identity, ns.name, ns.name, 'deployer', 'deployment-token-requester', 'airflow', 'deployer-tokens');
  unbound = await serviceAccountKubeconfig(ns.name, 'stranger', dir);
});

afterAll(async () => {
  await server?.stop();
  await controller?.stop();
  await identity?.cleanup();
  await elsewhere?.cleanup();
  await ns?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('kubectl apikey token --deployment with a ServiceAccount token', () => {
  it('prints a short-lived JWT for the Deployment whose subject is the ServiceAccount, verified against the JWKS', async () => {
    const r = await plugin(['token', '--deployment', 'airflow', '-n', ns.name], bound);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const token = r.stdout.trim();
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt');
    const { payload } = await jwtVerify(token, jwks, { issuer: server.url, audience: AUDIENCE, typ: 'at+jwt' });
    expect(payload.sub).toBe(`system:serviceaccount:${ns.name}:deployer`);
    expect(payload.deployment).toBe(`${ns.name}/airflow`);
    expect(String(payload.sub)).not.toMatch(/^ak_/);
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(3600);
  });

  it('gives the whole RFC 8693 response with -o json', async () => {
    const r = await plugin(['token', '--deployment', 'airflow', '-n', ns.name, '-o', 'json'], bound);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(res.token_type).toBe('Bearer');
    expect([ACCESS_TOKEN_TYPE, 'urn:ietf:params:oauth:token-type:jwt']).toContain(res.issued_token_type);
    expect(res.expires_in).toBeLessThanOrEqual(3600);
  });

  it('is refused for a Deployment of a namespace where the account has no binding', async () => {
    const r = await plugin(['token', '--deployment', 'airflow', '-n', elsewhere.name], bound);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: the token endpoint at .* refused: (access_denied|invalid_target)/m);
    expect(r.stdout).toBe('');
  });

  it('is refused for an account without the role', async () => {
    const r = await plugin(['token', '--deployment', 'airflow', '-n', ns.name], unbound);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: the token endpoint at .* refused: (access_denied|invalid_target)/m);
  });
});
