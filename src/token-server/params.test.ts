import { describe, expect, it } from 'vitest';
import { OAuthError } from './oauth-errors.ts';
import { bodyFormat, multi, parseBasic, parseBearer, parseBody, parseForm, single } from './params.ts';

const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

function errorOf(f: () => unknown): OAuthError | undefined {
  try { f(); } catch (e) { return e as OAuthError; }
  return undefined;
}

describe('the Content-Type of a body', () => {
  it.each([
    ['application/json', 'json'],
    ['application/x-www-form-urlencoded', 'form'],
    ['Application/JSON; charset=utf-8', 'json'],
    ['application/x-www-form-urlencoded;charset=UTF-8', 'form'],
    ['application/x-www-form-urlencoded; charset="utf-8"', 'form'],
    ['application/json; charset=iso-8859-1', undefined],
    ['text/plain', undefined],
    ['multipart/form-data; boundary=x', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%j is read as %j', (type, format) => {
    expect(bodyFormat(type)).toBe(format);
  });
});

describe('a form body', () => {
  it('decodes + as space and percent-escapes as UTF-8', () => {
    expect(parseForm('scope=deploy+read&audience=https%3A%2F%2Fa.example%2F%C3%A9')).toEqual({
      scope: 'deploy read', audience: 'https://a.example/é',
    });
  });

  it('keeps every value of a repeated parameter, so that the repetition can be refused', () => {
    expect(parseForm('grant_type=a&grant_type=b&resource=x')).toEqual({ grant_type: ['a', 'b'], resource: 'x' });
  });

  it('treats a name without "=" as an empty value and skips empty segments', () => {
    expect(parseForm('a&&b=1&')).toEqual({ a: '', b: '1' });
  });

  it('refuses a malformed percent-escape with invalid_request', () => {
    expect(errorOf(() => parseForm('a=%E0%A4%A'))?.error).toBe('invalid_request');
  });

  it('decodes raw UTF-8 bytes that were not escaped', () => {
    expect(parseBody(Buffer.from('client_id=ak_ü', 'utf8'), 'form')).toEqual({ client_id: 'ak_ü' });
  });

  it('cannot be tricked into setting a prototype', () => {
    const p = parseForm('__proto__=x&constructor=y');
    expect(Object.getPrototypeOf(p)).toBeNull();
    expect(single(p, '__proto__')).toBe('x');
  });
});

describe('a JSON body', () => {
  it.each([
    ['{"grant_type":"client_credentials"', 'truncated JSON'],
    ['[{"grant_type":"client_credentials"}]', 'an array'],
    ['"client_credentials"', 'a string'],
    ['null', 'null'],
    ['{"a":1}x', 'trailing garbage'],
  ])('%s (%s) is invalid_request', (body) => {
    const err = errorOf(() => parseBody(Buffer.from(body), 'json'));
    expect(err).toBeInstanceOf(OAuthError);
    expect(err?.error).toBe('invalid_request');
    expect(err?.status).toBe(400);
  });

  it('is an empty set of parameters when empty', () => {
    expect(parseBody(Buffer.alloc(0), 'json')).toEqual({});
  });
});

describe('reading one parameter', () => {
  it.each([
    [{ grant_type: 'x' }, 'x'],
    [{ grant_type: '' }, undefined],
    [{ grant_type: null }, undefined],
    [{}, undefined],
  ])('single(%j) is %j', (params, value) => {
    expect(single(params, 'grant_type')).toBe(value);
  });

  it.each([
    [{ grant_type: ['a', 'b'] }, 'duplicate_parameter'],
    [{ grant_type: 1 }, 'malformed_request'],
    [{ grant_type: { a: 1 } }, 'malformed_request'],
  ])('single(%j) is invalid_request (%s)', (params, reason) => {
    const err = errorOf(() => single(params, 'grant_type'));
    expect(err?.error).toBe('invalid_request');
    expect(err?.reason).toBe(reason);
  });

  it('reads a repeatable parameter from a repeated form field or a JSON array', () => {
    expect(multi({ resource: ['a', 'b'] }, 'resource')).toEqual(['a', 'b']);
    expect(multi({ resource: 'a' }, 'resource')).toEqual(['a']);
    expect(multi({}, 'resource')).toEqual([]);
    expect(errorOf(() => multi({ resource: [1] }, 'resource'))?.error).toBe('invalid_request');
  });
});

describe('HTTP Basic client credentials', () => {
  it.each([
    [basic('ak_x:aks_y'), { id: 'ak_x', secret: 'aks_y' }],
    [basic('ak%5Fx:a%3Ab+c'), { id: 'ak_x', secret: 'a:b c' }],
    [basic('ak_x:se:cret'), { id: 'ak_x', secret: 'se:cret' }],
    [`basic ${Buffer.from('a:b').toString('base64')}`, { id: 'a', secret: 'b' }],
  ])('%s is read as %j', (header, creds) => {
    expect(parseBasic(header)).toEqual(creds);
  });

  it.each([
    ['Basic'], ['Basic '], ['Basic !!!!'], [basic('no-colon')], [basic(':secret-only')], ['Bearer abc'], [basic('a:%zz')],
  ])('%j is malformed', (header) => {
    expect(parseBasic(header)).toBeUndefined();
  });
});

describe('a bearer token', () => {
  it.each([
    ['Bearer abc.def.ghi', 'abc.def.ghi'],
    ['bearer abc', 'abc'],
    ['Bearer ', undefined],
    ['Basic abc', undefined],
    ['Bearer a b', undefined],
    [undefined, undefined],
  ])('%j gives %j', (header, token) => {
    expect(parseBearer(header)).toBe(token);
  });
});
