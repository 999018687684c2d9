import { describe, expect, it } from 'vitest';
import { allowedIssuers, issuerProblem, privateIssuers } from './issuers.ts';

describe('an allowed federation issuer', () => {
  it.each([
    'https://token.actions.githubusercontent.com',
    'https://gitlab.example.com',
    'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE',
    'https://127.0.0.1:8443',
  ])('may be %s', (issuer) => {
    expect(issuerProblem(issuer)).toBeUndefined();
  });

  it.each<[string, string, string]>([
    ['plain http', 'http://token.actions.githubusercontent.com', 'not https'],
    ['not a URL', 'token.actions.githubusercontent.com', 'not a URL'],
    ['a query', 'https://issuer.example?tenant=a', 'query or fragment'],
    ['a fragment', 'https://issuer.example#a', 'query or fragment'],
    ['credentials', 'https://user:pass@issuer.example', 'credentials'],
  ])('may not have %s', (_what, issuer, problem) => {
    expect(issuerProblem(issuer)).toContain(problem);
  });

  it('is compared exactly: the flag\'s entries are the set, a trailing slash makes another issuer', () => {
    const allowed = allowedIssuers(['https://a.example', 'https://b.example/']);
    expect(allowed.has('https://a.example')).toBe(true);
    expect(allowed.has('https://a.example/')).toBe(false);
    expect(allowed.has('https://b.example')).toBe(false);
  });

  it('refuses the whole flag for one bad entry, naming it', () => {
    expect(() => allowedIssuers(['https://a.example', 'http://b.example'])).toThrow('--federation-issuers: "http://b.example" is not https');
  });
});

describe('a private federation issuer (--federation-issuer-jwks)', () => {
  it('is ISSUER=PATH, keyed by the exact issuer, the path taken after the first =', () => {
    const m = privateIssuers(['https://127.0.0.1:6443/=/etc/jwks/b.json', 'https://gitlab.internal=/etc/jwks/a=b.json'], new Set());
    expect([...m]).toEqual([['https://127.0.0.1:6443/', '/etc/jwks/b.json'], ['https://gitlab.internal', '/etc/jwks/a=b.json']]);
  });

  it.each<[string, string[], string[], string]>([
    ['no path', ['https://a.example'], [], '"https://a.example" is not ISSUER=PATH'],
    ['an empty path', ['https://a.example='], [], 'is not ISSUER=PATH'],
    ['a plain-http issuer, even with its keys given', ['http://a.example=/f'], [], '"http://a.example" is not https'],
    ['an issuer given twice', ['https://a.example=/f', 'https://a.example=/g'], [], 'is given twice'],
    ['an issuer also discovered', ['https://a.example=/f'], ['https://a.example'], 'also in --federation-issuers'],
  ])('refuses %s, naming the entry', (_what, entries, discovered, message) => {
    expect(() => privateIssuers(entries, new Set(discovered))).toThrow(`--federation-issuer-jwks: `);
    expect(() => privateIssuers(entries, new Set(discovered))).toThrow(message);
  });
});
