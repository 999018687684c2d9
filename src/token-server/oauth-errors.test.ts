import { describe, expect, it } from 'vitest';
import {
  InvalidClient, InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget, MethodNotAllowed, SlowDown, TemporarilyUnavailable,
  UnauthorizedClient, UnsupportedGrantType, type OAuthError,
} from './oauth-errors.ts';

describe('OAuth errors', () => {
  it.each<[OAuthError, string, number]>([
    [new InvalidRequest('x'), 'invalid_request', 400],
    [new InvalidClient('x', 'wrong_secret'), 'invalid_client', 401],
    [new MethodNotAllowed('x', ['POST']), 'invalid_request', 405],
    [new InvalidGrant('x'), 'invalid_grant', 400],
    [new UnauthorizedClient('x', 'key_not_ready'), 'unauthorized_client', 400],
    [new UnsupportedGrantType('x'), 'unsupported_grant_type', 400],
    [new InvalidScope('x'), 'invalid_scope', 400],
    [new InvalidTarget('x'), 'invalid_target', 400],
    [new SlowDown(3), 'slow_down', 429],
    [new TemporarilyUnavailable('x'), 'temporarily_unavailable', 503],
  ])('%o is %s with HTTP %i and an RFC 6749 5.2 body', (err, code, status) => {
    expect(err.error).toBe(code);
    expect(err.status).toBe(status);
    expect(JSON.parse(err.body())).toEqual({ error: code, error_description: 'x'.length && err.message });
  });

  it('asks for Basic credentials only when the client used the Authorization header', () => {
    expect(new InvalidClient('x', 'wrong_secret', { viaAuthorizationHeader: true }).headers?.['www-authenticate']).toMatch(/^Basic /);
    expect(new InvalidClient('x', 'wrong_secret', { viaAuthorizationHeader: false }).headers).toBeUndefined();
    expect(new InvalidClient('x', 'wrong_secret').headers).toBeUndefined();
  });

  it('tells a client using the wrong method which ones the endpoint takes', () => {
    expect(new MethodNotAllowed('x', ['GET', 'HEAD']).headers).toEqual({ allow: 'GET, HEAD' });
  });

  it('tells a throttled client when to come back, in whole seconds', () => {
    expect(new SlowDown(7).headers).toEqual({ 'retry-after': '7' });
  });
});
