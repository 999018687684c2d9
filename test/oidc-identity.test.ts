/**
 * The test identity provider and the test apiserver's trust in it: a person
 * signs in at a real OpenID Connect provider (over TLS, with a test CA) with
 * the authorization code flow and PKCE, gets an ID token, and the apiserver,
 * configured through its structured authentication configuration, knows
 * them as `oidc:<name>` with their groups, and RBAC applies to them.
 */
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterState, createNamespace, kubectl, type TestNamespace } from './support/cluster.ts';
import { OIDC_PREFIX, trustIssuer, whoAmI } from './support/oidc-issuer.ts';
import { startOidcProvider, type TestOidcProvider } from './support/oidc-provider.ts';
import { apiKeyPath } from './support/resources.ts';
import { waitFor } from './support/wait.ts';

const CLIENT = { clientId: 'apikey-console', clientSecret: 'test-client-secret', redirectUris: ['http://127.0.0.1:8/auth/callback'] };

let provider: TestOidcProvider;
let trust: { restore(): void } | undefined;
let teamA: TestNamespace;
let teamB: TestNamespace;

/** Signs `person` in through the authorization code flow with PKCE, and returns their ID token. */
async function idTokenOf(person: string): Promise<string> {
  // The discovery's fetch (trusting the test CA) stays the configuration's fetch for the token request.
  const config = await client.discovery(new URL(provider.issuer), CLIENT.clientId, CLIENT.clientSecret, undefined, {
    [client.customFetch]: (url, options) => undiciFetch(url, { ...options, dispatcher: provider.agent }),
  });
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: CLIENT.redirectUris[0]!, scope: 'openid email groups', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const callback = await provider.signIn(authorizationUrl.href, person);
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  if (!tokens.id_token) throw new Error('no ID token');
  return tokens.id_token;
}

async function listApiKeys(token: string, namespace: string): Promise<number> {
  const state = clusterState();
  const agent = new Agent({ connect: { ca: readFileSync(`${state.dir}/pki/ca.crt`) } });
  try {
    const r = await undiciFetch(`${state.server}${apiKeyPath(namespace)}`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
    await r.arrayBuffer();
    return r.status;
  } finally {
    await agent.close();
  }
}

beforeAll(async () => {
  provider = await startOidcProvider({ clients: [CLIENT] });
  trust = await trustIssuer(provider, CLIENT.clientId);
  teamA = await createNamespace('oidc-a');
  teamB = await createNamespace('oidc-b');
  const r = await kubectl(['-n', teamA.name, 'create', 'role', 'apikey-reader', '--verb=list,get', '--resource=apikeys.apikeys.dev']);
  expect(r.code, r.stderr).toBe(0);
  const b = await kubectl(['-n', teamA.name, 'create', 'rolebinding', 'alice-reads-apikeys', '--role=apikey-reader', `--user=${OIDC_PREFIX}alice`]);
  expect(b.code, b.stderr).toBe(0);
});

afterAll(async () => {
  trust?.restore();
  await teamA?.cleanup();
  await teamB?.cleanup();
  await provider?.stop();
});

describe('a person signed in at the test OIDC provider', () => {
  it('gets an ID token that the apiserver maps to oidc:<name> with their groups', async () => {
    const token = await idTokenOf('alice');
    expect(await whoAmI(token)).toEqual({ username: 'oidc:alice', groups: expect.arrayContaining(['oidc:developers', 'system:authenticated']) as unknown });
  });

  it('is subject to RBAC: alice may list ApiKeys in the namespace her RoleBinding names, and not in another', async () => {
    const token = await idTokenOf('alice');
    expect(await listApiKeys(token, teamA.name)).toBe(200);
    expect(await listApiKeys(token, teamB.name)).toBe(403);
  });

  it('gives another person their own identity, without alice\'s rights', async () => {
    const token = await idTokenOf('bob');
    expect(await whoAmI(token)).toMatchObject({ username: 'oidc:bob' });
    expect(await listApiKeys(token, teamA.name)).toBe(403);
  });

  it('is refused by the apiserver with a token the provider did not sign for this audience', async () => {
    expect(await whoAmI(await provider.mintIdToken({ sub: 'alice', audience: 'someone-else' }))).toBe(401);
  });

  it('is refused once the apiserver trusts no issuer again, so that no later test meets this one', async () => {
    const token = await idTokenOf('alice');
    trust?.restore();
    trust = undefined;
    await waitFor('the apiserver to drop the test issuer', async () => (await whoAmI(token)) === 401, 60_000, 250);
  });
});
