import { describe, expect, it } from 'vitest';
import type { DeploymentEntry } from '../keys.ts';
import type { OAuthError } from '../oauth-errors.ts';
import type { Params } from '../params.ts';
import { resolveAudiences, resolveScope } from './common.ts';

const dep = (audiences?: string[], taken: string[] = []): DeploymentEntry => ({
  namespace: 'ns', name: 'd', uid: 'u', deleting: false, audiences, audiencesNotHeld: new Set(taken), maxTokenTtlMs: 1, requireDpop: false,
});
const DEFAULTS = ['https://default.example'];

function errorOf(f: () => unknown): string | undefined {
  try { f(); } catch (e) { return (e as OAuthError).error; }
  return undefined;
}

describe('the audience of a token', () => {
  it.each<[string, Params, string[] | undefined, readonly string[]]>([
    ['is the Deployment\'s first audience when none is asked for', {}, ['a', 'b'], ['a']],
    ['is the server\'s first default audience when the Deployment sets none', {}, undefined, DEFAULTS],
    ['is the `audience` asked for', { audience: 'b' }, ['a', 'b'], ['b']],
    ['is the RFC 8707 `resource` asked for', { resource: 'b' }, ['a', 'b'], ['b']],
    ['is every `resource` asked for', { resource: ['a', 'b'] }, ['a', 'b'], ['a', 'b']],
    ['joins `audience` and `resource`, once each', { audience: 'a', resource: ['a', 'b'] }, ['a', 'b'], ['a', 'b']],
  ])('%s', (_what, params, audiences, expected) => {
    expect(resolveAudiences(params, dep(audiences), DEFAULTS)).toEqual(expected);
  });

  it.each<[string, Params, string[] | undefined, string]>([
    ['an audience the Deployment does not list', { audience: 'c' }, ['a', 'b'], 'invalid_target'],
    ['a default audience when the Deployment lists its own', { audience: DEFAULTS[0]! }, ['a'], 'invalid_target'],
    ['one allowed and one not', { resource: ['a', 'c'] }, ['a', 'b'], 'invalid_target'],
    ['an audience given twice', { audience: ['a', 'a'] }, ['a'], 'invalid_request'],
  ])('refuses %s', (_what, params, audiences, error) => {
    expect(errorOf(() => resolveAudiences(params, dep(audiences), DEFAULTS))).toBe(error);
  });

  it.each<[string, Params]>([
    ['when asked for', { audience: 'a' }],
    ['as a resource', { resource: ['b', 'a'] }],
    ['when it is the Deployment\'s first, asked for by default', {}],
  ])('refuses a custom audience the Deployment does not hold, %s, saying so without naming it', (_what, params) => {
    let message = '';
    try { resolveAudiences(params, dep(['a', 'b'], ['a']), DEFAULTS); } catch (e) { message = (e as OAuthError).message; }
    expect(errorOf(() => resolveAudiences(params, dep(['a', 'b'], ['a']), DEFAULTS))).toBe('invalid_target');
    expect(message).toContain('another Deployment claimed it first');
  });

  it('is invalid_target when neither the Deployment nor the server has an audience', () => {
    expect(errorOf(() => resolveAudiences({}, dep(undefined), []))).toBe('invalid_target');
  });
});

describe('the scope of a token', () => {
  const granted = ['deploy', 'read'];
  const set = new Set(granted);
  it.each<[Params, string]>([
    [{}, 'deploy read'],
    [{ scope: '' }, 'deploy read'],
    [{ scope: 'read' }, 'read'],
    [{ scope: 'read deploy' }, 'deploy read'],
    [{ scope: 'read  read' }, 'read'],
  ])('%j gives %j', (params, scope) => {
    expect(resolveScope(params, granted, set, 'deploy read')).toBe(scope);
  });

  it.each<[Params]>([[{ scope: 'admin' }], [{ scope: 'read admin' }], [{ scope: 'Deploy' }]])('%j is invalid_scope', (params) => {
    expect(errorOf(() => resolveScope(params, granted, set, 'deploy read'))).toBe('invalid_scope');
  });

  it('refuses read to a key that may only deploy', () => {
    expect(errorOf(() => resolveScope({ scope: 'read' }, ['deploy'], new Set(['deploy']), 'deploy'))).toBe('invalid_scope');
  });
});
