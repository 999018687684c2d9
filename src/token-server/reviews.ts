/**
 * Who a Kubernetes bearer token belongs to (TokenReview) and what RBAC lets
 * that user do with a Deployment (SubjectAccessReview), asked of the
 * apiserver with the token server's own ServiceAccount (the chart's
 * `<fullname>-token-server-reviews` ClusterRole), and cached briefly
 * (review-cache.ts). The token itself is never kept, logged or put in an
 * error: the cache is keyed by its SHA-256.
 *
 * @example
 *   const user = await reviewer.authenticate(subjectToken);   // undefined: not accepted
 *   if (user && await reviewer.mayCreate(user, { namespace, name, subresource: 'token' })) ...
 */
import { DEPLOYMENTS, GROUP } from '../api/index.ts';
import { secretDigest } from '../keys/format.ts';
import { KubeError, paths, type KubeClient } from '../kube/client.ts';
import type { Logger } from '../shared/log.ts';
import { redactSecrets } from '../shared/redact.ts';
import { CacheFull, ReviewCache, type ReviewCacheOptions } from './review-cache.ts';

/** A user as TokenReview reports it, passed unchanged to SubjectAccessReview. */
export interface KubeUser {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** `create` on `deployments/<subresource>` in apikeys.dev, for one Deployment. */
export interface DeploymentAccess {
  namespace: string;
  name: string;
  subresource: string;
}

export interface SubjectReviewer {
  /** The user `token` authenticates as, or undefined when the apiserver does not accept it. Throws ReviewUnavailable. */
  authenticate(token: string): Promise<KubeUser | undefined>;
  /** Whether RBAC (or the cluster's authorizer) allows `user` the access. Throws ReviewUnavailable. */
  mayCreate(user: KubeUser, access: DeploymentAccess): Promise<boolean>;
}

/** The apiserver could not answer (unreachable, timed out, refused our own credentials), or too many reviews are in flight. */
export class ReviewUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReviewUnavailable';
  }
}

export type ReviewKind = 'token' | 'access';
export type ReviewOutcome = 'cached' | 'authenticated' | 'unauthenticated' | 'allowed' | 'denied' | 'error' | 'overloaded';

export interface KubeReviewerOptions {
  client: KubeClient;
  log: Logger;
  /** Counts each review by outcome (metrics). */
  observe?: (review: ReviewKind, outcome: ReviewOutcome) => void;
  cache?: ReviewCacheOptions;
  /** Per review; the token request waits for it. */
  timeoutMs?: number;
}

const TOKEN_REVIEWS = paths.collection('authentication.k8s.io', 'v1', 'tokenreviews');
const ACCESS_REVIEWS = paths.collection('authorization.k8s.io', 'v1', 'subjectaccessreviews');

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  error?: string;
}

interface AccessReviewStatus {
  allowed?: boolean;
  denied?: boolean;
}

/** A cache key that holds no credential. */
const sha256 = (s: string) => secretDigest(s).toString('base64url');

export class KubeReviewer implements SubjectReviewer {
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly observe: (review: ReviewKind, outcome: ReviewOutcome) => void;
  private readonly timeoutMs: number;
  private readonly users: ReviewCache<KubeUser | undefined>;
  private readonly decisions: ReviewCache<boolean>;

  constructor(opts: KubeReviewerOptions) {
    this.client = opts.client;
    this.log = opts.log;
    this.observe = opts.observe ?? (() => undefined);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.users = new ReviewCache(opts.cache);
    this.decisions = new ReviewCache(opts.cache);
  }

  authenticate(token: string): Promise<KubeUser | undefined> {
    return this.cached('token', this.users, sha256(token), async () => {
      const status = await this.review<TokenReviewStatus>('token', TOKEN_REVIEWS, {
        apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview',
        // No audiences: the apiserver's own, so the token must be one the cluster accepts from this user.
        spec: { token },
      });
      const u = status.user;
      if (status.authenticated !== true || typeof u?.username !== 'string' || u.username === '') {
        this.observe('token', 'unauthenticated');
        // The authenticator's reason ("token has expired", ...) helps an admin; it never holds the token, but is masked anyway.
        if (status.error) this.log.debug({ why: redactSecrets(status.error).slice(0, 200) }, 'TokenReview: subject token not accepted');
        return undefined;
      }
      this.observe('token', 'authenticated');
      const user: KubeUser = { username: u.username };
      if (u.uid) user.uid = u.uid;
      if (Array.isArray(u.groups)) user.groups = u.groups;
      if (u.extra && typeof u.extra === 'object') user.extra = u.extra;
      return user;
    });
  }

  mayCreate(user: KubeUser, access: DeploymentAccess): Promise<boolean> {
    const extra = Object.keys(user.extra ?? {}).sort().map((k) => [k, user.extra![k]]);
    const key = sha256(JSON.stringify([user.username, user.uid ?? '', user.groups ?? [], extra,
      access.namespace, access.name, access.subresource]));
    return this.cached('access', this.decisions, key, async () => {
      const status = await this.review<AccessReviewStatus>('access', ACCESS_REVIEWS, {
        apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview',
        spec: {
          user: user.username, uid: user.uid, groups: user.groups, extra: user.extra,
          resourceAttributes: {
            namespace: access.namespace, name: access.name, verb: 'create',
            group: GROUP, resource: DEPLOYMENTS, subresource: access.subresource,
          },
        },
      });
      const allowed = status.allowed === true && status.denied !== true;
      this.observe('access', allowed ? 'allowed' : 'denied');
      return allowed;
    });
  }

  private cached<V>(kind: ReviewKind, cache: ReviewCache<V>, key: string, load: () => Promise<V>): Promise<V> {
    let r;
    try {
      r = cache.get(key, load);
    } catch (err) {
      if (!(err instanceof CacheFull)) throw err;
      this.observe(kind, 'overloaded');
      return Promise.reject(new ReviewUnavailable('too many Kubernetes reviews in flight'));
    }
    if (r.cached) this.observe(kind, 'cached');
    return r.value;
  }

  private async review<S>(kind: ReviewKind, path: string, body: object): Promise<S> {
    try {
      const answer = await this.client.request<{ status?: S }>('POST', path, { body, signal: AbortSignal.timeout(this.timeoutMs) });
      return answer?.status ?? ({} as S);
    } catch (err) {
      this.observe(kind, 'error');
      const status = err instanceof KubeError ? err.status : 0;
      const reason = err instanceof KubeError ? err.reason : (err as Error).name;
      const what = kind === 'token' ? 'TokenReview' : 'SubjectAccessReview';
      // Only status and reason: the message of a failed review is not needed, and is never worth the risk.
      if (status === 401 || status === 403) {
        this.log.error({ status, reason }, `the apiserver refused this token server's ${what}: its ServiceAccount needs create on ` +
          `${kind === 'token' ? 'tokenreviews.authentication.k8s.io' : 'subjectaccessreviews.authorization.k8s.io'} (the chart's -token-server-reviews ClusterRole)`);
      } else {
        this.log.warn({ status, reason }, `${what} failed`);
      }
      throw new ReviewUnavailable(`the Kubernetes API did not answer the ${what}`);
    }
  }
}
