/**
 * DPoP (RFC 9449) on the real control plane, with the real controller and
 * token server processes: spec.requireDPoP through the CRDs and the watches,
 * --dpop-require-nonce with nonces derived from the signing-keys Secret the
 * controller wrote, oauth4webapi as the client, and /authz asked as a proxy
 * in --trusted-proxies asks it. The attacks in detail, and the token exchange
 * and federated exchange with DPoP: src/token-server/dpop.test.ts and
 * src/token-server/grants/*.test.ts.
 */
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { proofKey } from './support/dpop.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { recordSecret, startController, startTokenServer, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import { createApiKey, createDeployment, credentialsOf, getSecret, uniqueAudience, waitForReady, type Credentials } from './support/resources.ts';

const AUDIENCE = uniqueAudience('dpop-app');
const STRICT_AUDIENCE = uniqueAudience('dpop-strict');
const APP = 'https://app.example/api/runs';

let ns: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: TokenServerProcess;
const creds: Record<'ci' | 'pinned' | 'strict', Credentials> = {} as never;

beforeAll(async () => {
  ns = await createNamespace('dpop');
  identity = await installOperatorIdentity();
  controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace });
  server = await startTokenServer({
    kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace,
    args: ['--dpop-require-nonce', '--trusted-proxies', '127.0.0.1'],
  });
  await createDeployment(ns.name, 'app', { audiences: [AUDIENCE] });
  await createDeployment(ns.name, 'strict', { audiences: [STRICT_AUDIENCE], requireDPoP: true });
  await createApiKey(ns.name, 'ci', { deploymentRef: { name: 'app' }, permissions: ['deploy', 'read'] });
  await createApiKey(ns.name, 'pinned', { deploymentRef: { name: 'app' }, requireDPoP: true });
  await createApiKey(ns.name, 'strict', { deploymentRef: { name: 'strict' } });
  for (const name of ['ci', 'pinned', 'strict'] as const) {
    await waitForReady(ns.name, name);
    creds[name] = credentialsOf((await getSecret(ns.name, name))!);
  }
}, 300_000);

afterAll(async () => {
  await Promise.all([server?.stop(), controller?.stop()]);
  await identity?.cleanup();
  await ns?.cleanup();
});

const as = () => ({ issuer: server.url, token_endpoint: `${server.url}/oauth/token`, introspection_endpoint: `${server.url}/oauth/introspect` });
const insecure = { [oauth.allowInsecureRequests]: true };

/** A client credentials token as oauth4webapi gets it, retrying once on use_dpop_nonce as its documentation says. */
async function token(c: Credentials, dpop?: oauth.DPoPHandle): Promise<oauth.TokenEndpointResponse> {
  const client = { client_id: c.keyId };
  const request = async () => oauth.processClientCredentialsResponse(as(), client,
    await oauth.clientCredentialsGrantRequest(as(), client, oauth.ClientSecretBasic(c.secret), { audience: c.audience }, { ...insecure, DPoP: dpop }));
  let t: oauth.TokenEndpointResponse;
  try {
    t = await request();
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    t = await request();
  }
  recordSecret(t.access_token);
  return t;
}

/** /authz asked as Traefik asks it about the client's request, with the client's Authorization and DPoP headers. */
async function authz(client: Headers, deployment: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {
    'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example', 'x-forwarded-uri': '/api/runs',
  };
  for (const name of ['authorization', 'dpop']) if (client.has(name)) headers[name] = client.get(name)!;
  const r = await fetch(`${server.url}/authz?deployment=${ns.name}/${deployment}`, { headers });
  return { status: r.status, body: await r.json() as Record<string, unknown> };
}

/** The headers oauth4webapi sends to the protected app with a DPoP-bound token. */
async function appRequest(accessToken: string, dpop: oauth.DPoPHandle): Promise<Headers> {
  let sent: Headers | undefined;
  await oauth.protectedResourceRequest(accessToken, 'GET', new URL(APP), new Headers(), null, {
    DPoP: dpop, [oauth.customFetch]: (_u: string, init: RequestInit) => { sent = new Headers(init.headers); return Promise.resolve(new Response('{}')); },
  });
  return sent!;
}

describe('DPoP on the real control plane', () => {
  it('gives oauth4webapi a DPoP-bound token after a nonce round trip, which /authz allows once with its proof', async () => {
    const dpop = oauth.DPoP({}, (await proofKey()).pair);
    const t = await token(creds.ci, dpop);
    expect(t.token_type).toBe('dpop');
    expect(decodeJwt(t.access_token).cnf).toEqual({ jkt: await dpop.calculateThumbprint() });
    const sent = await appRequest(t.access_token, dpop);
    expect((await authz(sent, 'app')).status).toBe(200);
    const replay = await authz(sent, 'app');
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_dpop_proof');
    const asBearer = new Headers({ authorization: `Bearer ${t.access_token}` });
    expect((await authz(asBearer, 'app')).body.error).toBe('invalid_token');
  });

  it('refuses a bearer request for a key with spec.requireDPoP, and for a key of a Deployment with it', async () => {
    for (const c of [creds.pinned, creds.strict]) {
      const r = await fetch(`${server.url}/oauth/token`, {
        method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', audience: c.audience }),
        headers: { authorization: `Basic ${Buffer.from(`${c.keyId}:${c.secret}`).toString('base64')}` },
      });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: string }).error).toBe('invalid_dpop_proof');
      expect((await token(c, oauth.DPoP({}, (await proofKey()).pair))).token_type).toBe('dpop');
    }
  });

  it('still gives bearer tokens to a key that does not require DPoP', async () => {
    expect((await token(creds.ci)).token_type).toBe('bearer');
  });
});
