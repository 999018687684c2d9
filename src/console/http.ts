/**
 * The console's HTTP plumbing: the security headers of every answer, the
 * session cookie, redirects that never leave the console, reading cookies
 * that anyone may have set, and reading a form body of bounded size.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { localTarget } from './redirects.ts';

export const CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
  "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'",
].join('; ');

export function securityHeaders(res: ServerResponse): void {
  res.setHeader('content-security-policy', CSP);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('cross-origin-opener-policy', 'same-origin');
  res.setHeader('cross-origin-resource-policy', 'same-origin');
  res.setHeader('permissions-policy', 'camera=(), microphone=(), geolocation=()');
}

export function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.end(body);
}

/** A page: never stored by a cache, since it shows what this person may see. */
export function sendHtml(res: ServerResponse, status: number, body: string): void {
  send(res, status, 'text/html; charset=utf-8', body, { 'cache-control': 'no-store' });
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json', JSON.stringify(value), { 'cache-control': 'no-store' });
}

/**
 * 303 to a page of the console (see redirects.ts: a target of another origin
 * becomes `/`). After a POST the browser GETs the new location, so a reload
 * never repeats the POST.
 */
export function redirect(res: ServerResponse, location: string): void {
  redirectTo(res, localTarget(location));
}

/** 303 to another site: only for a URL the console made itself from its configuration (the identity provider's). */
export function redirectAway(res: ServerResponse, url: URL): void {
  redirectTo(res, url.href);
}

function redirectTo(res: ServerResponse, location: string): void {
  res.statusCode = 303;
  res.setHeader('location', location);
  res.setHeader('cache-control', 'no-store');
  res.end();
}

/** The console's own cookie values are base64url; a value of anything else is no value of the console's. */
const COOKIE_VALUE = /^[A-Za-z0-9_-]{1,4096}$/;

/**
 * The cookies of a request that the console could have set: name to value,
 * the first of a name winning (RFC 6265 sends the most specific first). The
 * header is shared with every other server of the host (cookies ignore
 * ports), so anything else in it (`theme=50%`, a quoted value, no `=`) is
 * skipped, never an error; nothing is decoded.
 */
export function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const header = req.headers.cookie;
  if (typeof header !== 'string') return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    const value = part.slice(i + 1).trim();
    if (name !== '' && !(name in out) && COOKIE_VALUE.test(value)) out[name] = value;
  }
  return out;
}

export function sessionCookie(name: string, value: string, opts: { secure: boolean; maxAgeSeconds: number }): string {
  return [
    `${name}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${opts.maxAgeSeconds}`, ...(opts.secure ? ['Secure'] : []),
  ].join('; ');
}

/**
 * The request's target as a URL on a stand-in origin (only its path and query
 * are used), or undefined when no URL can be made of it: a request line may
 * carry an absolute URL such as `http://[`, which the URL parser refuses.
 */
export function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://console.invalid');
  } catch {
    return undefined;
  }
}

export class BodyTooLarge extends Error {}

/** An application/x-www-form-urlencoded body, at most `limit` bytes. */
export async function readForm(req: IncomingMessage, limit = 64 * 1024): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLarge('the form is too large');
    chunks.push(chunk);
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return new URLSearchParams();
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
