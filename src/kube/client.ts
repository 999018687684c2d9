/**
 * A thin client for the Kubernetes REST API on top of the kubeconfig's
 * authentication (client certificates, tokens, exec plugins: credentials.ts)
 * and one pooled undici dispatcher. It speaks paths and content types explicitly, so a merge
 * patch is a merge patch and an apply is an apply, and its errors carry the
 * HTTP status and the Status reason, never a response body that could hold
 * a Secret's data.
 */
import { STATUS_CODES } from 'node:http';
import { fetch } from 'undici';
import { credentialsOf, type Credentials, type KubeConfigLike } from './credentials.ts';
import { redactSecrets } from '../shared/redact.ts';

export const CONTENT = {
  json: 'application/json',
  mergePatch: 'application/merge-patch+json',
  jsonPatch: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

export class KubeError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(redactSecrets(message));
    this.name = 'KubeError';
    this.status = status;
    this.reason = reason;
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeError && e.status === 404;
/**
 * A write refused because it was based on a stale resourceVersion: the
 * object changed since it was read (409, reason Conflict: "the object has
 * been modified"). The apiserver answers this for updates, merge patches
 * and server-side applies that carry a resourceVersion alike.
 */
export const isConflict = (e: unknown): boolean => e instanceof KubeError && e.status === 409 && e.reason === 'Conflict';
/** A create of an object that exists already (409, reason AlreadyExists). */
export const isAlreadyExists = (e: unknown): boolean => e instanceof KubeError && e.status === 409 && e.reason === 'AlreadyExists';

export interface KubeList<T> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type RequestObserver = (method: string, status: number, seconds: number) => void;

export class KubeClient {
  private readonly server: string;
  /** One connection pool for every request and watch, and each request's auth headers. */
  private readonly credentials: Credentials;
  /** Called after every request (status 0: unreachable), for metrics. */
  observer: RequestObserver | undefined;

  constructor(kc: KubeConfigLike) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/$/, '');
    this.credentials = credentialsOf(kc);
  }

  url(path: string, query?: Query): URL {
    const u = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  /** The Authorization (and Impersonate-User) headers this client sends: for a bearer token of the user's own. */
  async authHeaders(): Promise<Record<string, string>> {
    return (await this.credentials.authenticate(this.server)).headers;
  }

  /**
   * A watch of `path`: the response body, a stream of JSON lines, once the
   * server answered 200; a KubeError otherwise. `signal` ends it. Watches are
   * not counted by the observer: each lasts minutes, not a request's time.
   */
  async watch(path: string, query: Query, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const url = this.url(path, { ...query, watch: true });
    const auth = await this.credentials.authenticate(url.toString());
    let res;
    try {
      res = await fetch(url, { headers: { ...auth.headers, accept: 'application/json' }, dispatcher: auth.dispatcher, signal });
    } catch (err) {
      if (signal.aborted) throw err;
      throw unreachable(this.server, err);
    }
    if (res.status !== 200 || !res.body) throw kubeErrorOf({ status: res.status, statusText: res.statusText, text: await res.text() }, 'GET', path);
    return res.body;
  }

  async request<T>(method: Method, path: string, opts: RequestOptions = {}): Promise<T> {
    const url = this.url(path, opts.query);
    const auth = await this.credentials.authenticate(url.toString());
    const headers: Record<string, string> = { ...auth.headers, accept: 'application/json' };
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = opts.contentType ?? CONTENT.json;
      body = JSON.stringify(opts.body);
    }
    const started = performance.now();
    const observe = (status: number) => this.observer?.(method, status, (performance.now() - started) / 1000);
    // The dispatcher's own request(), not fetch(): a request-response exchange needs none of fetch's
    // Request, Response and web-stream objects, which cost the controller about a third of its CPU per new
    // key (docs/development/benchmarks.md). Watches, which stream, stay on fetch. It asks for no
    // compression, so the apiserver spends no CPU gzipping list pages for a client a hop away.
    let status: number;
    let text: string;
    try {
      const res = await auth.dispatcher.request({
        origin: url.origin, path: url.pathname + url.search, method, headers, body,
        signal: opts.signal ?? AbortSignal.timeout(30_000),
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      observe(0);
      throw unreachable(this.server, err);
    }
    if (status < 200 || status > 299) {
      const err = kubeErrorOf({ status, statusText: STATUS_CODES[status] ?? '', text }, method, path);
      observe(status);
      throw err;
    }
    observe(status);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  /** Lists every page (limit/continue), so a large collection is never truncated. */
  async list<T>(path: string, query: Query = {}, pageSize = 500): Promise<KubeList<T>> {
    const items: T[] = [];
    const resourceVersion = await this.listPages<T>(path, query, (page) => { items.push(...page); }, pageSize);
    return { metadata: { resourceVersion }, items };
  }

  /**
   * Lists every page, handing each to `onPage` as it arrives, so that a
   * caller that keeps less than the whole object (a cache) never holds the
   * whole collection at once. Resolves with the list's resourceVersion.
   */
  async listPages<T>(path: string, query: Query, onPage: (items: T[]) => void, pageSize = 500): Promise<string | undefined> {
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.get<KubeList<T>>(path, { ...query, limit: pageSize, continue: cont });
      onPage(page.items);
      cont = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (cont);
    return resourceVersion;
  }

  create<T>(path: string, body: unknown, query?: Query): Promise<T> {
    return this.request<T>('POST', path, { body, query });
  }

  replace<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  mergePatch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: CONTENT.mergePatch });
  }

  jsonPatch<T>(path: string, ops: unknown[]): Promise<T> {
    return this.request<T>('PATCH', path, { body: ops, contentType: CONTENT.jsonPatch });
  }

  /** Server-side apply under `fieldManager`; JSON is valid YAML, so the body is sent as JSON. */
  apply<T>(path: string, body: unknown, fieldManager: string, force = true): Promise<T> {
    return this.request<T>('PATCH', path, {
      body, contentType: CONTENT.apply, query: { fieldManager, force },
    });
  }

  delete<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('DELETE', path, { body });
  }
}

function unreachable(server: string, err: unknown): KubeError {
  // fetch wraps the socket's error as its cause; the dispatcher's request() throws it as it is.
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const why = e.cause?.code ?? e.cause?.message ?? (typeof e.code === 'string' ? e.code : e.message);
  return new KubeError(0, 'Unreachable', `cannot reach the Kubernetes API at ${server}: ${why}`);
}

/** Who the apiserver takes `client`'s credentials for (SelfSubjectReview); a KubeError when it refuses them. */
export async function selfSubjectReview(client: KubeClient): Promise<{ username?: string; groups?: string[] }> {
  const review = await client.create<{ status?: { userInfo?: { username?: string; groups?: string[] } } }>(
    '/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  return review.status?.userInfo ?? {};
}

/** The error of a refused request, from its Status body (reason and message; never the body itself). */
function kubeErrorOf(res: { status: number; statusText: string; text: string }, method: string, path: string): KubeError {
  let reason = res.statusText;
  let message = `${method} ${path}: HTTP ${res.status}`;
  try {
    const status = JSON.parse(res.text) as { reason?: string; message?: string };
    if (status.reason) reason = status.reason;
    if (status.message) message = status.message;
  } catch { /* not a Status */ }
  return new KubeError(res.status, reason, message);
}

/** REST paths of the resources this project uses. */
export const paths = {
  /** The prefix of an API group version: `/api/v1` for the core group ''. */
  groupVersion(group: string, version: string): string {
    return group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
  },
  collection(group: string, version: string, plural: string, namespace?: string): string {
    const base = paths.groupVersion(group, version);
    return namespace ? `${base}/namespaces/${namespace}/${plural}` : `${base}/${plural}`;
  },
  object(group: string, version: string, plural: string, namespace: string, name: string): string {
    return `${paths.collection(group, version, plural, namespace)}/${encodeURIComponent(name)}`;
  },
};
