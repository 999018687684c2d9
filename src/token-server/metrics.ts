/**
 * Prometheus metrics of the token server, in a registry of its own. Every
 * label has a small fixed set of values (route, status code, grant type,
 * failure reason, review outcome): never a key id, a secret or a token. The
 * one exception, the refusals of expired keys, is labelled by namespace and
 * Deployment (never by key), counts only clients that presented the right
 * secret, and holds at most MAX_EXPIRED_SERIES pairs.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { KubeClient } from '../kube/client.ts';
import { instrumentKubeRequests } from '../kube/request-metrics.ts';
import type { FailureReason } from './oauth-errors.ts';
import type { ReviewKind, ReviewOutcome } from './reviews.ts';

export type Route =
  | 'token' | 'introspect' | 'authz' | 'jwks' | 'discovery' | 'healthz' | 'readyz' | 'other';

/**
 * Bound label children, created once per label value: the request path
 * (every token issued, every refusal, every request's latency) does no label
 * hashing.
 */
function bound<C>(cache: Map<string, C>, key: string, make: () => C): C {
  let c = cache.get(key);
  if (!c) {
    c = make();
    cache.set(key, c);
  }
  return c;
}

/** Beyond this many (namespace, Deployment) pairs, expired-key refusals are counted under `_other`. */
export const MAX_EXPIRED_SERIES = 2000;

type Observer = { observe(v: number): void };
type Incrementer = { inc(): void };

export class TokenServerMetrics {
  readonly registry = new Registry();
  private readonly issued: Counter<'grant_type'>;
  private readonly failures: Counter<'reason'>;
  private readonly duration: Histogram<'route' | 'code'>;
  private readonly introspections: Counter<'active'>;
  private readonly authz: Counter<'decision'>;
  private readonly lastUsed: Counter<'result'>;
  private readonly reviews: Counter<'review' | 'outcome'>;
  private readonly federationFetches: Counter<'document' | 'result'>;
  private readonly audit: Counter<'result'>;
  private readonly observers = new Map<string, Observer>();
  private readonly issuedBy = new Map<string, Incrementer>();
  private readonly failuresBy = new Map<string, Incrementer>();
  private readonly expiredRefusals: Counter<'namespace' | 'deployment'>;
  private readonly expiredBy = new Map<string, Incrementer>();

  constructor(gauges: {
    sizes(): Record<string, number>; rateLimitEntries(): number; ready(): boolean; signingKeysProblem(): string | undefined;
    /** Milliseconds since each cache last heard from the Kubernetes API (staleness.ts); none without Kubernetes. */
    cacheAges?(): { cache: string; ageMs: number }[];
    /** --max-cache-staleness; undefined: off. */
    maxCacheStalenessMs?: number;
  }, defaultMetrics = true) {
    const registers = [this.registry];
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'apikey_operator_token_server_' });
    this.issued = new Counter({
      name: 'apikey_operator_tokens_issued_total', help: 'Access tokens issued, by grant type', labelNames: ['grant_type'], registers,
    });
    this.failures = new Counter({
      name: 'apikey_operator_token_failures_total', help: 'Refused token, introspection and authentication requests, by reason',
      labelNames: ['reason'], registers,
    });
    this.duration = new Histogram({
      name: 'apikey_operator_token_server_request_duration_seconds', help: 'Request latency by route and HTTP status',
      labelNames: ['route', 'code'], registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    });
    this.expiredRefusals = new Counter({
      name: 'apikey_operator_token_expired_key_refusals_total',
      help: 'Requests refused because the API key had expired, though they presented its right secret: a client still using a dead key; by namespace and Deployment',
      labelNames: ['namespace', 'deployment'], registers,
    });
    this.introspections = new Counter({
      name: 'apikey_operator_token_introspections_total', help: 'Introspection answers, by active', labelNames: ['active'], registers,
    });
    this.authz = new Counter({
      name: 'apikey_operator_token_authz_total', help: 'Forward-auth decisions', labelNames: ['decision'], registers,
    });
    this.lastUsed = new Counter({
      name: 'apikey_operator_token_last_used_writes_total', help: 'status.lastUsedAt writes, by result', labelNames: ['result'], registers,
    });
    this.reviews = new Counter({
      name: 'apikey_operator_token_exchange_reviews_total',
      help: 'Token exchange reviews (review: token = TokenReview, access = SubjectAccessReview), by outcome; cached: answered from the short-lived cache',
      labelNames: ['review', 'outcome'], registers,
    });
    this.audit = new Counter({
      name: 'apikey_operator_audit_records_total',
      help: 'Audit records of token requests, by result: written, or dropped because the audit log could not keep up or failed',
      labelNames: ['result'], registers,
    });
    this.federationFetches = new Counter({
      name: 'apikey_operator_federation_issuer_fetches_total',
      help: 'Fetches of the allowed federation issuers\' documents (document: discovery or jwks), and loads of the private issuers\' JWKS files (jwks_file), by result',
      labelNames: ['document', 'result'], registers,
    });
    new Gauge({
      name: 'apikey_operator_token_server_cached_objects', help: 'Objects in the token server caches', labelNames: ['resource'], registers,
      collect() { for (const [resource, n] of Object.entries(gauges.sizes())) this.set({ resource }, n); },
    });
    new Gauge({
      name: 'apikey_operator_token_server_rate_limit_entries', help: '(key id, address) pairs with recorded client authentication failures, plus addresses with failed token exchanges', registers,
      collect() { this.set(gauges.rateLimitEntries()); },
    });
    new Gauge({
      name: 'apikey_operator_signing_keys_invalid',
      help: '1 while the signing-keys Secret is malformed or deleted and this token server keeps its last good keys',
      registers,
      collect() { this.set(gauges.signingKeysProblem() ? 1 : 0); },
    });
    new Gauge({
      name: 'apikey_operator_token_server_cache_staleness_seconds',
      help: 'Seconds since each cache of the token server last heard from the Kubernetes API (a list, a watch answered, a watch event or bookmark)',
      labelNames: ['cache'], registers,
      collect() { for (const a of gauges.cacheAges?.() ?? []) this.set({ cache: a.cache }, a.ageMs / 1000); },
    });
    new Gauge({
      name: 'apikey_operator_token_server_max_cache_staleness_seconds',
      help: '--max-cache-staleness in seconds: past it the token server refuses to judge keys and tokens; 0: off (no bound)',
      registers,
      collect() { this.set((gauges.maxCacheStalenessMs ?? 0) / 1000); },
    });
    new Gauge({
      name: 'apikey_operator_token_server_ready', help: '1 when caches are synced, a signing key is active and the Kubernetes API accepts the credential', registers,
      collect() { this.set(gauges.ready() ? 1 : 0); },
    });
  }
  /** Counts every request the client makes to the Kubernetes API, by method and status code. */
  instrument(client: KubeClient): void {
    instrumentKubeRequests(client, this.registry);
  }


  auditRecords(result: 'written' | 'dropped', count: number): void {
    this.audit.inc({ result }, count);
  }

  tokenIssued(grantType: string): void {
    bound(this.issuedBy, grantType, () => this.issued.labels({ grant_type: grantType })).inc();
  }

  failure(reason: FailureReason): void {
    bound(this.failuresBy, reason, () => this.failures.labels({ reason })).inc();
  }

  /** A client presented the right secret of an expired key of this Deployment. */
  expiredKeyRefused(namespace: string, deployment: string): void {
    let id = `${namespace}/${deployment}`;
    if (!this.expiredBy.has(id) && this.expiredBy.size >= MAX_EXPIRED_SERIES) {
      id = '_other/_other';
      [namespace, deployment] = ['_other', '_other'];
    }
    bound(this.expiredBy, id, () => this.expiredRefusals.labels({ namespace, deployment })).inc();
  }

  introspection(active: boolean): void {
    this.introspections.inc({ active: String(active) });
  }

  authzDecision(decision: 'allow' | 'unauthenticated' | 'forbidden' | 'bad_request'): void {
    this.authz.inc({ decision });
  }

  lastUsedWrite(result: 'ok' | 'error'): void {
    this.lastUsed.inc({ result });
  }

  federationFetch(document: 'discovery' | 'jwks' | 'jwks_file', result: 'ok' | 'error'): void {
    this.federationFetches.inc({ document, result });
  }

  review(review: ReviewKind, outcome: ReviewOutcome): void {
    this.reviews.inc({ review, outcome });
  }

  observe(route: Route, status: number, seconds: number): void {
    bound(this.observers, `${route} ${status}`, () => this.duration.labels({ route, code: String(status) })).observe(seconds);
  }
}
