/**
 * The console's OpenID Connect sign-in against a real provider (oidc-provider
 * over TLS with a test CA, test/support/oidc-provider.ts): the code flow with
 * PKCE, and every check of the callback.
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOidcProvider, type TestOidcProvider } from '../../test/support/oidc-provider.ts';
import { OidcRelyingParty, SignInError, type OidcSettings } from './oidc.ts';

const CLIENT = { clientId: 'apikey-console', clientSecret: 'unit-test-client-secret', redirectUris: ['http://127.0.0.1:8/auth/callback'] };

let provider: TestOidcProvider;
let settings: OidcSettings;
const parties: OidcRelyingParty[] = [];

function party(overrides: Partial<OidcSettings> = {}): OidcRelyingParty {
  const p = new OidcRelyingParty({ ...settings, ...overrides });
  parties.push(p);
  return p;
}

beforeAll(async () => {
  provider = await startOidcProvider({ clients: [CLIENT] });
  settings = {
    issuerUrl: provider.issuer, clientId: CLIENT.clientId, clientSecret: CLIENT.clientSecret,
    redirectUri: CLIENT.redirectUris[0]!, scopes: ['openid', 'email', 'groups'], caFile: provider.caFile,
  };
});

afterAll(async () => {
  for (const p of parties) await p.close();
  await provider?.stop();
});

describe('signing in with the authorization code flow and PKCE', () => {
  it('asks for a code with an S256 challenge, state and nonce, and returns the ID token once the person signed in', async () => {
    const rp = party();
    const { authorizationUrl, pending } = await rp.beginSignIn('/deployments/team-a/airflow');
    const asked = new URL(authorizationUrl).searchParams;
    expect(Object.fromEntries(asked)).toMatchObject({
      response_type: 'code', client_id: CLIENT.clientId, redirect_uri: CLIENT.redirectUris[0], scope: 'openid email groups',
      code_challenge_method: 'S256', state: pending.state, nonce: pending.nonce,
    });
    expect(asked.get('code_challenge')).not.toBe(pending.codeVerifier);
    expect(pending.returnTo).toBe('/deployments/team-a/airflow');

    const back = await provider.signIn(authorizationUrl, 'alice');
    const person = await rp.completeSignIn(back.search, pending);
    const claims = decodeJwt(person.idToken);
    expect(claims).toMatchObject({ iss: provider.issuer, aud: CLIENT.clientId, sub: 'alice', groups: ['developers'], nonce: pending.nonce });
    expect(person.subject).toBe('alice@example.test');
    expect(person.expiresAt).toBe(claims.exp! * 1000);
  });

  it.each([
    ['a state of another sign-in', (p: { state: string }) => ({ ...p, state: 'someone-elses-state' })],
    ['a nonce of another sign-in', (p: { nonce: string }) => ({ ...p, nonce: 'someone-elses-nonce' })],
    ['another PKCE verifier', (p: { codeVerifier: string }) => ({ ...p, codeVerifier: 'x'.repeat(43) })],
  ])('refuses a callback checked against %s, without repeating the code in its message', async (_what, tamper) => {
    const rp = party();
    const { authorizationUrl, pending } = await rp.beginSignIn('/');
    const back = await provider.signIn(authorizationUrl, 'bob');
    const err = await rp.completeSignIn(back.search, tamper(pending) as typeof pending).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SignInError);
    expect((err as Error).message).not.toContain(back.searchParams.get('code'));
  });

  it('refuses a callback that no sign-in of this session started', async () => {
    await expect(party().completeSignIn('?code=abc&state=def', undefined)).rejects.toThrow(/not started here/);
  });

  it('refuses a code used a second time', async () => {
    const rp = party();
    const { authorizationUrl, pending } = await rp.beginSignIn('/');
    const back = await provider.signIn(authorizationUrl, 'alice');
    await rp.completeSignIn(back.search, pending);
    await expect(rp.completeSignIn(back.search, pending)).rejects.toBeInstanceOf(SignInError);
  });

  it('says what the provider answered when it did not sign the person in', async () => {
    const rp = party();
    const { pending } = await rp.beginSignIn('/');
    await expect(rp.completeSignIn(`?error=access_denied&error_description=no+thanks&state=${pending.state}`, pending))
      .rejects.toThrow('The identity provider did not sign you in: access_denied (no thanks).');
  });

  it('trusts the provider\'s certificate only with its CA, and tries discovery again at the next sign-in', async () => {
    await expect(party({ caFile: undefined }).beginSignIn('/')).rejects.toThrow(/could not be reached/);
    const gone = party({ issuerUrl: 'https://127.0.0.1:1' });
    await expect(gone.beginSignIn('/')).rejects.toThrow(/https:\/\/127\.0\.0\.1:1 could not be reached/);
    await expect(gone.beginSignIn('/')).rejects.toThrow(/could not be reached/);
  });

  it('ends the session at the provider too with a form of its client_id, never the ID token', async () => {
    const form = (await party().signOutForm('http://127.0.0.1:8/'))!;
    const action = new URL(form.action);
    expect(action.origin).toBe(provider.issuer);
    expect(action.search).toBe('');
    expect(form.fields).toEqual([['client_id', 'apikey-console'], ['post_logout_redirect_uri', 'http://127.0.0.1:8/']]);
  });
});
