/**
 * Request parameters of the token and introspection endpoints, from a JSON
 * body (the seed's curl) or a form body (RFC 6749's encoding), and client
 * credentials from HTTP Basic (RFC 6749 2.3.1). Every way a request can be
 * malformed ends here as an `invalid_request`, never as an exception of
 * another kind.
 */
import { InvalidRequest } from './oauth-errors.ts';

/** Parameter name -> value; a name given more than once holds an array. */
export type Params = Record<string, unknown>;

export type BodyFormat = 'json' | 'form';

const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';

/**
 * The body format a Content-Type header names, undefined for any other type
 * (the caller answers 415). A charset other than UTF-8 is refused too.
 */
export function bodyFormat(contentType: string | undefined): BodyFormat | undefined {
  if (contentType === undefined) return undefined;
  // Fast path for the two exact values real clients send.
  if (contentType === JSON_TYPE) return 'json';
  if (contentType === FORM) return 'form';
  const [type = '', ...params] = contentType.toLowerCase().split(';');
  for (const p of params) {
    const [k, v = ''] = p.split('=');
    if (k?.trim() === 'charset' && !/^"?utf-8"?$/.test(v.trim())) return undefined;
  }
  switch (type.trim()) {
    case JSON_TYPE: return 'json';
    case FORM: return 'form';
    default: return undefined;
  }
}

/** Parses a body (possibly empty) into parameters; throws InvalidRequest when it is malformed. */
export function parseBody(body: Buffer, format: BodyFormat): Params {
  if (body.length === 0) return {};
  return format === 'json' ? parseJsonBody(body) : parseForm(body.toString('latin1'));
}

function parseJsonBody(body: Buffer): Params {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new InvalidRequest('the body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidRequest('the JSON body must be an object of parameters');
  }
  return value as Params;
}

/**
 * application/x-www-form-urlencoded, UTF-8. Decoded by hand rather than with
 * URLSearchParams so that a repeated name is seen (RFC 6749 3.2 forbids it)
 * and a malformed percent-escape is an error, not U+FFFD.
 */
export function parseForm(text: string): Params {
  const out: Params = Object.create(null) as Params;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('&', start);
    if (end === -1) end = text.length;
    if (end > start) {
      const eq = text.indexOf('=', start);
      const split = eq === -1 || eq > end ? end : eq;
      const name = decodeFormComponent(text.slice(start, split));
      const value = split === end ? '' : decodeFormComponent(text.slice(split + 1, end));
      const prev = out[name];
      if (prev === undefined) out[name] = value;
      else if (Array.isArray(prev)) (prev as string[]).push(value);
      else out[name] = [prev as string, value];
    }
    start = end + 1;
  }
  return out;
}

/** Decodes one form component; the body is read as latin1 so each byte is one char, then UTF-8 is decoded here. */
export function decodeFormComponent(s: string): string {
  if (!/[+%]/.test(s)) {
    // No escapes: only check that the raw bytes are ASCII-safe UTF-8.
    return /[^\x20-\x7e]/.test(s) ? Buffer.from(s, 'latin1').toString('utf8') : s;
  }
  try {
    return decodeURIComponent(Buffer.from(s.replace(/\+/g, ' '), 'latin1').toString('utf8'));
  } catch {
    throw new InvalidRequest('the form body holds a malformed percent-escape');
  }
}

function present(v: unknown): boolean {
  // RFC 6749 3.1: a parameter sent without a value is treated as omitted.
  return v !== undefined && v !== null && v !== '';
}

/**
 * The single value of `name`, or undefined when it is absent or empty.
 * Throws invalid_request when it is repeated or not a string.
 */
export function single(params: Params, name: string): string | undefined {
  const v = Object.hasOwn(params, name) ? params[name] : undefined;
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (!present(v)) return undefined;
  if (Array.isArray(v)) {
    throw new InvalidRequest(`the parameter ${name} must not be included more than once`, 'duplicate_parameter');
  }
  throw new InvalidRequest(`the parameter ${name} must be a string`);
}

/** Every value of a parameter that may repeat (RFC 8707 `resource`); a JSON array counts as repetition. */
export function multi(params: Params, name: string): string[] {
  const v = Object.hasOwn(params, name) ? params[name] : undefined;
  if (typeof v === 'string') return v === '' ? [] : [v];
  if (!present(v)) return [];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return (v).filter((x) => x !== '');
  throw new InvalidRequest(`the parameter ${name} must be a string or a list of strings`);
}

export interface BasicCredentials {
  id: string;
  secret: string;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Client credentials from `Authorization: Basic ...` (RFC 6749 2.3.1: each of
 * id and secret form-urlencoded, then joined by ':' and base64-encoded).
 * Returns undefined when the header is malformed or empty.
 */
export function parseBasic(header: string): BasicCredentials | undefined {
  if (header.length < 7 || header.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const b64 = header.slice(6).trim();
  if (b64 === '' || !BASE64.test(b64)) return undefined;
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    const unescape = (x: string) => (/[+%]/.test(x) ? decodeURIComponent(x.replace(/\+/g, ' ')) : x);
    return { id: unescape(decoded.slice(0, colon)), secret: unescape(decoded.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}

/** True when the Authorization header uses the Basic scheme (well-formed or not). */
export function isBasicScheme(header: string): boolean {
  return /^basic(\s|$)/i.test(header);
}

/** The token of `Authorization: Bearer <token>` (RFC 6750 2.1), or undefined. */
export function parseBearer(header: string | undefined): string | undefined {
  if (!header || header.length < 8 || header.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const token = header.slice(7).trim();
  return /^[A-Za-z0-9\-._~+/]+=*$/.test(token) ? token : undefined;
}
