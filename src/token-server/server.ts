/**
 * The HTTP server: routing, body limit, content types, and turning every
 * outcome into a response. Bad input of any kind is a 4xx with an OAuth
 * error body; anything unexpected is `500 {"error":"server_error"}` with the
 * detail in the log only. The token path stays synchronous from the end of
 * the body to the response (no await, no timers).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { authorize } from './authz.ts';
import type { RequestInfo, ServerContext } from './context.ts';
import { discoveryDocument, PATHS } from './discovery.ts';
import type { Grant, TokenResult } from './grants/index.ts';
import { introspect } from './introspect.ts';
import type { Route } from './metrics.ts';
import {
  InvalidRequest, MethodNotAllowed, OAuthError, SERVER_ERROR_BODY, TemporarilyUnavailable, UnsupportedGrantType,
} from './oauth-errors.ts';
import { bodyFormat, parseBody, single, type Params } from './params.ts';
import { clientAddress, unmapIPv4 } from './ratelimit.ts';
import type { AuditNotes, AuditParty } from './audit.ts';
import { STALE_RETRY_AFTER_SECONDS } from './staleness.ts';

export const DEFAULT_BODY_LIMIT = 16 * 1024;
/**
 * The request line and headers together (the /authz query and the bearer
 * token are in them): set here rather than left to Node's default, which a
 * NODE_OPTIONS --max-http-header-size could raise. Larger is 431.
 */
export const MAX_HEADER_BYTES = 16 * 1024;
const JSON_TYPE = 'application/json';
const EMPTY = Buffer.alloc(0);

export interface HttpServerOptions {
  ctx: ServerContext;
  grants: ReadonlyMap<string, Grant>;
  /** Caches synced, a signing key active, and the Kubernetes API accepting the credential. */
  ready(): boolean;
  bodyLimit?: number;
  /** Serve HTTPS with these (tls.ts's loadTlsFiles); plain HTTP without. */
  tls?: SecureContextOptions;
}

type PostHandler = (req: IncomingMessage, res: ServerResponse, info: RequestInfo, params: Params, start: number) => void;

/** What a GET endpoint answers. */
interface GetAnswer {
  status: number;
  body: string;
  headers?: Record<string, string>;
  /** Default: application/json. */
  contentType?: string;
}

/**
 * RFC 6749 3.2: request parameters must not be included more than once. A
 * form body shows repetition as an array; any repeated name but the few the
 * grants allow to repeat is refused before anything else is looked at. (In a
 * JSON body an array is a value, not a repetition: the parameters a grant
 * reads refuse one themselves, and unknown ones are ignored.)
 */
function refuseRepeated(params: Params, repeatable: ReadonlySet<string>): void {
  for (const name in params) {
    if (Array.isArray(params[name]) && !repeatable.has(name)) {
      throw new InvalidRequest(`the parameter ${name.slice(0, 64)} must not be included more than once`, 'duplicate_parameter');
    }
  }
}

export function createTokenHttpServer(opts: HttpServerOptions): Server | HttpsServer {
  const { ctx, grants } = opts;
  const limit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const discovery = discoveryDocument(ctx.issuer, [...grants.keys()]);
  const { metrics, log } = ctx;

  function send(res: ServerResponse, route: Route, start: number, status: number, body: string,
    headers?: Record<string, string>, contentType = JSON_TYPE): void {
    if (res.headersSent || res.destroyed) return;
    // The flat-array form of writeHead is Node's cheapest way to send headers.
    const h = ['content-type', contentType, 'content-length', String(Buffer.byteLength(body))];
    if (headers) for (const k in headers) h.push(k, headers[k]!);
    res.writeHead(status, h);
    res.end(body);
    metrics.observe(route, status, (performance.now() - start) / 1000);
  }

  function fail(res: ServerResponse, route: Route, start: number, err: unknown): void {
    if (err instanceof OAuthError) {
      metrics.failure(err.reason);
      log.debug({ route, error: err.error, reason: err.reason }, 'request refused');
      send(res, route, start, err.status, err.body(), { 'cache-control': 'no-store', ...err.headers });
    } else {
      log.error({ err, route }, 'unexpected error while serving a request');
      send(res, route, start, 500, SERVER_ERROR_BODY, { 'cache-control': 'no-store' });
    }
  }

  /** Who sent a request, for the audit log: the client through the trusted proxies, and its User-Agent. */
  function auditParty(req: IncomingMessage): AuditParty {
    return {
      clientAddress: unmapIPv4(ctx.proxies.clientOf(req.socket.remoteAddress, req.headers['x-forwarded-for']) ?? '?'),
      userAgent: req.headers['user-agent'],
    };
  }

  /** fail(), and for the token path a refusal in the audit log with what the grant had established. */
  function refuse(req: IncomingMessage, res: ServerResponse, route: Route, start: number, err: unknown, notes: AuditNotes = {}): void {
    fail(res, route, start, err);
    if (route === 'token') ctx.audit?.refused(auditParty(req), notes, err, Date.now());
  }

  const tokenHeaders = { 'cache-control': 'no-store', pragma: 'no-cache' };
  const tokenRepeatable = new Set([...grants.values()].flatMap((g) => g.repeatable));
  const noneRepeatable = new Set<string>();

  const token: PostHandler = (req, res, info, params, start) => {
    const grantType = single(params, 'grant_type');
    if (grantType === undefined) throw new InvalidRequest('the parameter grant_type is required', 'missing_parameter');
    const grant = grants.get(grantType);
    if (!grant) {
      throw new UnsupportedGrantType(`grant_type must be one of: ${[...grants.keys()].join(', ')}`);
    }
    info.audit.grantType = grant.type;
    const done = (r: TokenResult) => {
      metrics.tokenIssued(grant.type);
      send(res, 'token', start, 200, r.body, tokenHeaders);
      ctx.audit?.issued(auditParty(req), info.audit, r.claims, Date.now());
    };
    const result = grant.handle(ctx, info, params);
    if (result instanceof Promise) result.then(done, (err: unknown) => refuse(req, res, 'token', start, err, info.audit));
    else done(result);
  };

  const introspection: PostHandler = (_req, res, info, params, start) => {
    send(res, 'introspect', start, 200, introspect(ctx, info, params), tokenHeaders);
  };

  /** Reads a POST body within the limit, parses it, and calls `handler`; every failure is an OAuth error. */
  function post(req: IncomingMessage, res: ServerResponse, route: Route, start: number, handler: PostHandler,
    repeatable: ReadonlySet<string>): void {
    if (req.method !== 'POST') {
      refuse(req, res, route, start, new MethodNotAllowed(`use POST for ${route === 'token' ? PATHS.token : PATHS.introspect}`, ['POST']));
      return;
    }
    const format = bodyFormat(req.headers['content-type']);
    if (!format) {
      refuse(req, res, route, start, req.headers['content-type'] === undefined
        ? new InvalidRequest('a Content-Type of application/x-www-form-urlencoded or application/json is required', 'unsupported_media_type')
        : new InvalidRequest('the Content-Type must be application/x-www-form-urlencoded or application/json', 'unsupported_media_type', 415));
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      tooLarge(req, res, route, start);
      return;
    }
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) {
        over = true;
        tooLarge(req, res, route, start);
        return;
      }
      if (!first) first = c;
      else (chunks ??= [first]).push(c);
    });
    req.on('end', () => {
      if (over) return;
      const body = chunks ? Buffer.concat(chunks) : (first ?? EMPTY);
      const info: RequestInfo = {
        authorization: req.headers.authorization,
        address: clientAddress(ctx.proxies.clientOf(req.socket.remoteAddress, req.headers['x-forwarded-for'])),
        nowMs: Date.now(),
        audit: {},
      };
      try {
        const params = parseBody(body, format);
        if (format === 'form') refuseRepeated(params, repeatable);
        handler(req, res, info, params, start);
      } catch (err) {
        refuse(req, res, route, start, err, info.audit);
      }
    });
  }

  function tooLarge(req: IncomingMessage, res: ServerResponse, route: Route, start: number): void {
    // Stop reading: the connection closes after this answer.
    if (!res.headersSent) res.setHeader('connection', 'close');
    refuse(req, res, route, start, new InvalidRequest(`the request body is larger than ${limit} bytes`, 'body_too_large', 413));
  }

  /** False (after a 405) for a method other than GET or HEAD. */
  function getOrHead(req: IncomingMessage, res: ServerResponse, route: Route, start: number): boolean {
    if (req.method === 'GET' || req.method === 'HEAD') return true;
    send(res, route, start, 405, '{"error":"method_not_allowed"}', { allow: 'GET, HEAD' });
    return false;
  }

  function get(req: IncomingMessage, res: ServerResponse, route: Route, start: number, answer: () => GetAnswer): void {
    if (!getOrHead(req, res, route, start)) return;
    const a = answer();
    send(res, route, start, a.status, a.body, a.headers, a.contentType);
  }

  /**
   * While the Kubernetes API refuses this program's credential the caches are
   * not refreshed, and a key or Deployment deleted meanwhile would still be
   * honoured: the endpoints that judge keys and tokens answer 503 (RFC 6749
   * temporarily_unavailable) instead, as /readyz does. The same with
   * --max-cache-staleness once a cache has heard nothing from the apiserver
   * for longer than that (staleness.ts). The JWKS and discovery documents
   * stay served: verifiers need them for the tokens already issued.
   */
  function unavailable(req: IncomingMessage, res: ServerResponse, route: Route, start: number): boolean {
    let refusal: TemporarilyUnavailable | undefined;
    if (ctx.store.credentialRefused()) {
      refusal = new TemporarilyUnavailable(
        'the token server cannot refresh its view of Kubernetes (the Kubernetes API refuses its credential); retry later');
    } else {
      const stale = ctx.staleness?.stale();
      if (stale) {
        refusal = new TemporarilyUnavailable(`the token server has heard nothing from the Kubernetes API for ${Math.round(stale.ageMs / 1000)}s, `
          + `longer than its --max-cache-staleness of ${ctx.staleness!.boundMs! / 1000}s, so its view of keys may be out of date; retry later`,
        'cache_stale', STALE_RETRY_AFTER_SECONDS);
      }
    }
    if (!refusal) return false;
    req.resume();
    fail(res, route, start, refusal);
    return true;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const start = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    try {
      switch (path) {
        case PATHS.token:
          if (unavailable(req, res, 'token', start)) return;
          post(req, res, 'token', start, token, tokenRepeatable);
          return;
        case PATHS.introspect:
          if (unavailable(req, res, 'introspect', start)) return;
          post(req, res, 'introspect', start, introspection, noneRepeatable);
          return;
        case PATHS.jwks:
          get(req, res, 'jwks', start, () => ({
            status: 200, body: ctx.store.signing.jwks(Date.now()), headers: { 'cache-control': 'public, max-age=60' }, contentType: 'application/jwk-set+json',
          }));
          return;
        case PATHS.oauthMetadata:
        case PATHS.openidConfiguration:
          get(req, res, 'discovery', start, () => ({ status: 200, body: discovery, headers: { 'cache-control': 'public, max-age=300' } }));
          return;
        case '/healthz':
        case '/livez':
          get(req, res, 'healthz', start, () => ({ status: 200, body: 'ok\n', contentType: 'text/plain' }));
          return;
        case '/readyz': {
          get(req, res, 'readyz', start, () => (opts.ready()
            ? { status: 200, body: 'ok\n', contentType: 'text/plain' }
            : { status: 503, body: 'not ready\n', contentType: 'text/plain' }));
          return;
        }
        default:
          if (path === PATHS.authz || path.startsWith(`${PATHS.authz}/`)) {
            if (unavailable(req, res, 'authz', start)) return;
            // Forward-auth: any method (Envoy forwards the original one); the body is never read.
            req.resume();
            const a = authorize(ctx, req.headers.authorization, new URLSearchParams(q === -1 ? '' : url.slice(q + 1)), Date.now());
            send(res, 'authz', start, a.status, a.body, { 'cache-control': 'no-store', ...a.headers });
            return;
          }
          send(res, 'other', start, 404, '{"error":"not_found"}');
      }
    } catch (err) {
      refuse(req, res, path === PATHS.token ? 'token' : 'other', start, err);
    }
  }

  const timeouts = { requestTimeout: 30_000, headersTimeout: 20_000, keepAliveTimeout: 5_000, maxHeaderSize: MAX_HEADER_BYTES };
  const server = opts.tls ? createHttpsServer({ ...timeouts, ...opts.tls }, handle) : createServer(timeouts, handle);
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    // Refuse an oversized body before the client sends it.
    if (Number(req.headers['content-length'] ?? 0) > limit) {
      tooLarge(req, res, (req.url ?? '').split('?')[0] === PATHS.token ? 'token' : 'other', performance.now());
      return;
    }
    res.writeContinue();
    handle(req, res);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    const body = '{"error":"invalid_request","error_description":"malformed HTTP request"}';
    socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
  });
  return server;
}
