import { describe, expect, it } from 'vitest';
import { localTarget } from './redirects.ts';

describe('the page to go to (next after sign-in, every redirect)', () => {
  it.each([
    ['/deployments/a/b?x=1', '/deployments/a/b?x=1'],
    ['/token#top', '/token#top'],
    ['/%2F/evil.example', '/%2F/evil.example'],
    ['/%5Cevil.example', '/%5Cevil.example'],
    ['/a/../token', '/token'],
    ['/\t/evil.example/phish', '/'],
    ['/\n/evil.example/phish', '/'],
    ['/\r\n/evil.example', '/'],
    ['\t//evil.example', '/'],
    ['/\\evil.example', '/'],
    ['\\\\evil.example', '/'],
    ['//evil.example', '/'],
    ['///evil.example', '/'],
    ['/.//evil.example', '/'],
    ['/a/..//evil.example', '/'],
    ['https://evil.example/', '/'],
    ['https:evil.example', '/'],
    ['javascript:alert(1)', '/'],
    [' /token', '/'],
    [`/${'é'.repeat(200)}`, '/'],
    ['', '/'],
    [null, '/'],
  ])('%j gives %j: never another site', (given, expected) => {
    expect(localTarget(given)).toBe(expected);
  });
});
