/**
 * Who a Kubernetes bearer token belongs to (TokenReview) and what RBAC lets
 * that user do with a Deployment (SubjectAccessReview), asked of the
 * apiserver with the token server's own ServiceAccount (the chart's
 * `<fullname>-token-server-reviews` ClusterRole), and cached briefly
 * (review-cache.ts). The token itself is never kept, logged or put in an
 * error: the cache is keyed by its SHA-256.
 *
 * Every review is asked for a client address (`ReviewAsker`): each address
 * has a fair share of the reviews in flight (review-budget.ts), and an
 * address the failure limiter throttles is answered from the cache only.
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
import { ReviewBudget } from './review-budget.ts';
import { CacheFull, ClientShareFull, NotCached, ReviewCache, type CacheAsk, type ReviewCacheOptions } from './review-cache.ts';

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

/** On whose behalf a review is asked (see CacheAsk): the client address, and whether the apiserver may be asked. */
export type ReviewAsker = CacheAsk;

export interface SubjectReviewer {
  /**
   * The user `token` authenticates as, or undefined when the apiserver does
   * not accept it. Throws ReviewUnavailable, or ReviewRefused for the asker.
   */
  authenticate(token: string, asker?: ReviewAsker): Promise<KubeUser | undefined>;
  /** Whether RBAC (or the cluster's authorizer) allows `user` the access. Throws ReviewUnavailable or ReviewRefused. */
  mayCreate(user: KubeUser, access: DeploymentAccess, asker?: ReviewAsker): Promise<boolean>;
}

/** The apiserver could not answer (unreachable, timed out, refused our own credentials), or too many reviews are in flight. */
export class ReviewUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReviewUnavailable';
  }
}

/**
 * The review was not asked for this client: `throttled`, it may be answered
 * from the cache only and the answer is not there; `busy`, its share of the
 * reviews in flight is taken.
 */
export class ReviewRefused extends Error {
  readonly why: 'throttled' | 'busy';
  constructor(why: 'throttled' | 'busy') {
    super(why === 'busy' ? 'too many token exchanges of this client are being checked at once' : 'this client is throttled');
    this.name = 'ReviewRefused';
    this.why = why;
  }
}

export type ReviewKind = 'token' | 'access';
/** `throttled`: not asked for a client (ReviewRefused); `overloaded`: every slot in flight taken. */
export type ReviewOutcome = 'cached' | 'authenticated' | 'unauthenticated' | 'allowed' | 'denied' | 'error' | 'overloaded' | 'throttled';

export interface KubeReviewerOptions {
  client: KubeClient;
  log: Logger;
  /** Counts each review by outcome (metrics). */
  observe?: (review: ReviewKind, outcome: ReviewOutcome) => void;
  cache?: ReviewCacheOptions;
  /** Per review; the token request waits for it. */
  timeoutMs?: number;
  /**
   * The audiences TokenReview asks for (--token-review-audiences); empty: the
   * apiserver's own, so any token the cluster accepts from a person
   * (kubectl credentials, OIDC) is accepted here too.
   */
  audiences?: readonly string[];
}

const TOKEN_REVIEWS = paths.collection('authentication.k8s.io', 'v1', 'tokenreviews');
const ACCESS_REVIEWS = paths.collection('authorization.k8s.io', 'v1', 'subjectaccessreviews');

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  error?: string;
  /** With spec.audiences: those of them the token is for (empty: the apiserver's own audience only). */
  audiences?: string[];
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
  private readonly audiences: readonly string[];

  constructor(opts: KubeReviewerOptions) {
    this.client = opts.client;
    this.log = opts.log;
    this.observe = opts.observe ?? (() => undefined);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.audiences = opts.audiences ?? [];
    // One budget for both kinds: a client's share counts every review it causes.
    const cache = { ...opts.cache, budget: opts.cache?.budget ?? new ReviewBudget(opts.cache) };
    this.users = new ReviewCache<KubeUser | undefined>(cache, (u) => u !== undefined);
    this.decisions = new ReviewCache<boolean>(cache, (allowed) => allowed);
  }

  authenticate(token: string, asker: ReviewAsker = {}): Promise<KubeUser | undefined> {
    return this.cached('token', this.users, sha256(token), asker, async () => {
      const status = await this.review<TokenReviewStatus>('token', TOKEN_REVIEWS, {
        apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview',
        // No audiences: the apiserver's own, so the token must be one the cluster accepts from this user.
        // With audiences, only a token bound to one of them (TokenRequest, projected token with audience:).
        spec: this.audiences.length ? { token, audiences: this.audiences } : { token },
      });
      const u = status.user;
      // An authenticator that ignores audiences answers without status.audiences: then the token is
      // only good for the apiserver itself, which is what --token-review-audiences rules out.
      const forUs = this.audiences.length === 0 || (status.audiences ?? []).some((a) => this.audiences.includes(a));
      if (status.authenticated !== true || typeof u?.username !== 'string' || u.username === '' || !forUs) {
        this.observe('token', 'unauthenticated');
        // The authenticator's reason ("token has expired", ...) helps an admin; it never holds the token, but is masked anyway.
        if (status.error) this.log.debug({ why: redactSecrets(status.error).slice(0, 200) }, 'TokenReview: subject token not accepted');
        else if (!forUs && status.authenticated === true) this.log.debug('TokenReview: subject token not bound to --token-review-audiences');
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

  mayCreate(user: KubeUser, access: DeploymentAccess, asker: ReviewAsker = {}): Promise<boolean> {
    const extra = Object.keys(user.extra ?? {}).sort().map((k) => [k, user.extra![k]]);
    const key = sha256(JSON.stringify([user.username, user.uid ?? '', user.groups ?? [], extra,
      access.namespace, access.name, access.subresource]));
    return this.cached('access', this.decisions, key, asker, async () => {
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

  private cached<V>(kind: ReviewKind, cache: ReviewCache<V>, key: string, asker: ReviewAsker, load: () => Promise<V>): Promise<V> {
    let r;
    try {
      r = cache.get(key, load, asker);
    } catch (err) {
      if (err instanceof CacheFull) {
        this.observe(kind, 'overloaded');
        return Promise.reject(new ReviewUnavailable('too many Kubernetes reviews in flight'));
      }
      if (err instanceof ClientShareFull || err instanceof NotCached) {
        this.observe(kind, 'throttled');
        return Promise.reject(new ReviewRefused(err instanceof NotCached ? 'throttled' : 'busy'));
      }
      throw err;
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
