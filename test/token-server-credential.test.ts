/**
 * Issue 18 item 9: the token server is not ready, and serves no key, while
 * the apiserver refuses its credential. It runs as in its Pod, from a
 * ServiceAccount folder whose token file it reads again every minute, with a
 * real token of the chart's token-server ServiceAccount, bound (TokenRequest
 * boundObjectRef) to a Secret: deleting the Secret makes the apiserver refuse
 * the token at once, as deleting a Pod does to its projected token. The
 * watches it opened before stay open on the old credential; the server must
 * notice anyway, go not ready within a bound, answer 503
 * temporarily_unavailable instead of honouring a key deleted meanwhile, and
 * come back by itself once the file holds a working token again.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecretObject } from '../src/api/index.ts';
import { adminKubeConfig, clusterState, createNamespace, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { recordSecret, startController, startTokenServer, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, credentialsOf, getSecret, secretPath, uniqueAudience, waitForReady,
} from './support/resources.ts';
import { authz, form, issued, post, requestToken, scrapeMetrics, type KeyCredentials } from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

const AUDIENCE = uniqueAudience('credential');
/** The bound the test allows for noticing a refused credential: the probe asks every 10 s, the apiserver caches a token's success for 10 s. */
const NOTICE_MS = 60_000;
/** And for coming back: the token file is read again every minute, then the next probe, then the informers' backoff. */
const RECOVER_MS = 150_000;

let identity: OperatorIdentity;
let ns: TestNamespace;
let controller: RunningProcess;
let server: TokenServerProcess;
let dir: string;
let tokenFile: string;
let live: KeyCredentials;
let doomed: KeyCredentials;
let doomedToken: string;
let refusedAfterMs: number;

/** A token of the token server's ServiceAccount, bound to a new Secret `binding`: deleting that Secret revokes it. */
async function boundToken(binding: string): Promise<string> {
  const c = adminClient();
  const secret = await c.create<SecretObject>(secretPath(identity.namespace), {
    apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: binding },
  });
  const review = await c.create<{ status: { token: string } }>(
    `/api/v1/namespaces/${identity.namespace}/serviceaccounts/${identity.tokenServerServiceAccount}/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
      spec: { expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: binding, uid: secret.metadata!.uid } },
    });
  recordSecret(review.status.token);
  return review.status.token;
}

/** Replaces the token file at once, as the kubelet does (a rename, never a half-written file). */
function writeToken(token: string): void {
  writeFileSync(`${tokenFile}.new`, token, { mode: 0o600 });
  renameSync(`${tokenFile}.new`, tokenFile);
}

const readyz = async () => (await fetch(`${server.url}/readyz`)).status;

async function keyOf(name: string): Promise<KeyCredentials> {
  await waitForReady(ns.name, name);
  const secret = await waitFor(`Secret ${name}`, () => getSecret(ns.name, name));
  return { ...credentialsOf(secret), audience: AUDIENCE };
}

beforeAll(async () => {
  identity = await installOperatorIdentity();
  ns = await createNamespace('credential');
  controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace });
  await createDeployment(ns.name, 'app', { audiences: [AUDIENCE] });
  await createApiKey(ns.name, 'live', { deploymentRef: { name: 'app' } });
  await createApiKey(ns.name, 'doomed', { deploymentRef: { name: 'app' } });
  [live, doomed] = await Promise.all([keyOf('live'), keyOf('doomed')]);

  dir = mkdtempSync(join(tmpdir(), 'token-server-credential-'));
  const sa = join(dir, 'var', 'run', 'secrets', 'kubernetes.io', 'serviceaccount');
  mkdirSync(sa, { recursive: true });
  tokenFile = join(sa, 'token');
  writeToken(await boundToken('token-server-binding-1'));
  writeFileSync(join(sa, 'ca.crt'), Buffer.from(adminKubeConfig().getCurrentCluster()!.caData!, 'base64'));
  writeFileSync(join(sa, 'namespace'), identity.namespace);
  const apiserver = new URL(clusterState().server);
  server = await startTokenServer({
    kubeconfig: '', operatorNamespace: '', raw: true,
    env: { KUBECONFIG: undefined, APIKEY_OPERATOR_POD_ROOT: dir, KUBERNETES_SERVICE_HOST: apiserver.hostname, KUBERNETES_SERVICE_PORT: apiserver.port },
  });
  await issued(server, live);
  doomedToken = await issued(server, doomed);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await controller?.stop();
  await ns?.cleanup();
  await identity?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a token server whose credential the apiserver refuses', () => {
  it(`goes not ready within ${NOTICE_MS / 1000} s, though its watches are still open`, async () => {
    expect(await readyz()).toBe(200);
    const t0 = Date.now();
    await adminClient().delete(secretPath(identity.namespace, 'token-server-binding-1'));
    await waitFor('/readyz 503', async () => (await readyz()) === 503, NOTICE_MS, 200);
    refusedAfterMs = Date.now() - t0;
    console.log(`token server not ready ${refusedAfterMs} ms after its credential was revoked`);
    expect(await scrapeMetrics(server)).toMatch(/^apikey_operator_token_server_ready 0$/m);
    expect(server.logs()).toMatch(/"level":"error".*"status":401.*the Kubernetes API refuses this program's credential/);
  }, NOTICE_MS + 10_000);

  it('answers 503 temporarily_unavailable to token requests, introspection and /authz, even for a key deleted meanwhile', async () => {
    expect(refusedAfterMs).toBeDefined();
    await adminClient().delete(apiKeyPath(ns.name, 'doomed'));
    for (const key of [live, doomed]) {
      const r = await requestToken(server, key);
      expect(r.status).toBe(503);
      expect(r.body.error).toBe('temporarily_unavailable');
      expect(r.headers.get('retry-after')).toBe('1');
    }
    const introspection = await post(`${server.url}/oauth/introspect`, form({ token: doomedToken }, {
      authorization: `Basic ${Buffer.from(`${live.keyId}:${live.secret}`).toString('base64')}`,
    }));
    expect(introspection.status).toBe(503);
    const forwardAuth = await authz(server, doomedToken);
    expect(forwardAuth.status).toBe(503);
    expect(((await forwardAuth.json()) as { error: string }).error).toBe('temporarily_unavailable');
    // The JWKS stays served: verifiers need it for tokens already issued.
    expect((await fetch(`${server.url}/.well-known/jwks.json`)).status).toBe(200);
  });

  it(`comes back by itself within ${RECOVER_MS / 1000} s of a working token in its file, without the deleted key`, async () => {
    expect(refusedAfterMs).toBeDefined();
    const t0 = Date.now();
    writeToken(await boundToken('token-server-binding-2'));
    await waitFor('/readyz 200', async () => (await readyz()) === 200, RECOVER_MS, 500);
    console.log(`token server ready again ${Date.now() - t0} ms after a working token was written`);
    expect(server.logs()).toContain('the Kubernetes API accepts this program\'s credential again');
    await issued(server, live);
    const r = await requestToken(server, doomed);
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('invalid_client');
    expect((await authz(server, doomedToken)).status).toBe(401);
  }, RECOVER_MS + 20_000);
});
