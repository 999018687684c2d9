import { describe, expect, it } from 'vitest';
import { allowedIssuers, issuerProblem } from './issuers.ts';

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
