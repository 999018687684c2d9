/** What every endpoint of the token server shares: configuration, caches, limiter, metrics. */
import type { Logger } from '../shared/log.ts';
import type { AuditNotes, TokenAudit } from './audit.ts';
import type { LastUsedRecorder } from './last-used.ts';
import type { TokenServerMetrics } from './metrics.ts';
import type { TrustedProxies } from './proxies.ts';
import type { FailureLimiter } from './ratelimit.ts';
import type { SubjectReviewer } from './reviews.ts';
import type { IssuerKeys } from './issuer-keys.ts';
import type { KeyStore } from './key-store.ts';
import type { StalenessGuard } from './staleness.ts';

export interface ServerContext {
  /** `iss` of every token, without a trailing slash. */
  issuer: string;
  /** Audiences of Deployments that set none (--audiences). */
  defaultAudiences: readonly string[];
  store: KeyStore;
  limiter: FailureLimiter;
  /** Failed token exchanges per client address (ratelimit.ts EXCHANGE_LIMITS). */
  exchangeLimiter: FailureLimiter;
  metrics: TokenServerMetrics;
  lastUsed: LastUsedRecorder;
  log: Logger;
  /** TokenReview and SubjectAccessReview for the token exchange; absent without a Kubernetes API (benchmarks, unit tests). */
  reviewer: SubjectReviewer | undefined;
  /** The external issuers allowed for federation (--federation-issuers) and their keys. */
  federation: IssuerKeys;
  /** --max-cache-staleness: whether a cache has heard nothing from the Kubernetes API for too long; absent: no bound. */
  staleness?: StalenessGuard;
  /** Reverse proxies whose X-Forwarded-For names the client (--trusted-proxies). */
  proxies: TrustedProxies;
  /** The audit log of token requests (--audit-log-path); none when off. */
  audit: TokenAudit | undefined;
  /** Lifetime of temporary user tokens (--user-token-ttl), before the Deployment's and the 24h ceilings. */
  userTokenTtlMs: number;
}

/** What a request brings beyond its parameters. */
export interface RequestInfo {
  /** The Authorization header, if any. */
  authorization: string | undefined;
  /** The client address the rate limiter counts (see ratelimit.ts clientAddress). */
  address: string;
  nowMs: number;
  /** What the grant established so far, for the audit record (audit.ts): never a credential. */
  audit: AuditNotes;
}
