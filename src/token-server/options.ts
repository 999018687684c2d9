import type { KubeConfigLike } from '../kube/credentials.ts';
import type { Pkcs11Config } from '../shared/pkcs11/token.ts';
import type { TrustedProxies } from './proxies.ts';
import type { TlsFiles } from './tls.ts';

/** --audit-log-*: where the audit records go (audit-writer.ts). */
export interface AuditLogOptions {
  /** `-` for stdout, else a file. */
  path: string;
  /** Rotate before the file passes this many bytes; 0: never. */
  maxSizeBytes: number;
  /** Rotated files kept; 0: all. */
  maxBackups: number;
}

export interface TokenServerOptions {
  kc: KubeConfigLike;
  port: number;
  host: string;
  /** Port of /metrics, on `host` (0: any free port); none when undefined. The token port never serves /metrics. */
  metricsPort?: number;
  /** The `iss` of every token; also the base of the discovery documents' URLs. */
  issuer: string;
  /** Default audiences for Deployments that set none. */
  audiences: string[];
  operatorNamespace: string;
  /** Watched namespaces; empty means all. */
  namespaces: string[];
  logLevel: string;
  /** The reverse proxies whose X-Forwarded-For is believed (see proxies.ts); none by default. */
  trustedProxies?: TrustedProxies;
  /** Lifetime of temporary user tokens (token exchange); default 1h, at most 24h. */
  userTokenTtlMs?: number;
  /** The audiences a subject token must be bound to (TokenReview spec.audiences); empty: the apiserver's own. */
  tokenReviewAudiences?: string[];
  /** External issuers whose tokens FederatedCredentials may trust (--federation-issuers); none: federation off. */
  federationIssuers?: string[];
  /** Private issuers (--federation-issuer-jwks): issuer -> the file of its JWKS; never contacted. */
  federationIssuerJwks?: ReadonlyMap<string, string>;
  /** PEM bundle of further CAs trusted for the federation issuers' TLS (--federation-ca-file's content). */
  federationCaPem?: string;
  /** Serve HTTPS with this certificate and key, reloaded when the files change. */
  tls?: TlsFiles;
  /** The audit log of token requests; none when undefined. */
  auditLog?: AuditLogOptions;
  /**
   * --max-cache-staleness: past this long without hearing from the Kubernetes
   * API, refuse to judge keys and tokens (staleness.ts); undefined: no bound.
   */
  maxCacheStalenessMs?: number;
  /** Sign with keys held in this PKCS#11 token (the keys the signing-keys Secret records by label). */
  pkcs11?: Pkcs11Config;
}
