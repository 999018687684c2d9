/**
 * The token server program: caches from watches, the HTTP server, the
 * lastUsedAt writer, and a graceful stop on SIGTERM/SIGINT (stop accepting,
 * finish in-flight requests, stop the watches).
 *
 * @example
 *   // A benchmark or test, without Kubernetes:
 *   const server = await startTokenServer(opts, { store: new MemoryKeyStore({ apiKeys, deployments, signingKeys }) });
 *   ...
 *   await server.close();
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Server as HttpsServer } from 'node:https';
import { KubeClient } from '../kube/client.ts';
import { createLogger, type Logger } from '../shared/log.ts';
import type { ServerContext } from './context.ts';
import { normalizeIssuer } from './discovery.ts';
import { grantRegistry } from './grants/index.ts';
import { IssuerKeys } from './issuer-keys.ts';
import { JwksFiles } from './issuer-jwks-files.ts';
import { allowedIssuers } from '../federation/issuers.ts';
import type { KeyStore } from './key-store.ts';
import { KubeKeyStore } from './kube-key-store.ts';
import { LastUsedRecorder } from './last-used.ts';
import { createMetricsServer } from './metrics-server.ts';
import { TokenServerMetrics } from './metrics.ts';
import type { TokenServerOptions } from './options.ts';
import { TrustedProxies } from './proxies.ts';
import { EXCHANGE_LIMITS, FailureLimiter, type FailureLimiterOptions } from './ratelimit.ts';
import { KubeReviewer, type SubjectReviewer } from './reviews.ts';
import { createTokenHttpServer } from './server.ts';
import { loadTlsFiles, TlsReloader } from './tls.ts';
import { Pkcs11KeySource } from '../shared/pkcs11/source.ts';
import { Pkcs11Token } from '../shared/pkcs11/token.ts';
import type { SigningKeySource } from '../shared/signing-source.ts';
import { TokenAudit } from './audit.ts';
import { StalenessGuard } from './staleness.ts';
import { AuditWriter } from './audit-writer.ts';

export type { TokenServerOptions } from './options.ts';

/** --user-token-ttl's default: temporary user tokens live an hour. */
export const DEFAULT_USER_TOKEN_TTL_MS = 3600_000;

export interface TokenServerDeps {
  /** A store to serve from instead of watching Kubernetes (benchmarks, tests). */
  store?: KeyStore;
  log?: Logger;
  limits?: FailureLimiterOptions;
  /** Of failed token exchanges per client address; default EXCHANGE_LIMITS. */
  exchangeLimits?: FailureLimiterOptions;
  /** Register process-wide default metrics (off for several servers in one process). */
  defaultMetrics?: boolean;
  /** Who a Kubernetes token belongs to and what it may do (token exchange); default: the Kubernetes API, unless a store is given. */
  reviewer?: SubjectReviewer;
  /** The federation issuers' keys; default: discovered over HTTPS for opts.federationIssuers. */
  federation?: IssuerKeys;
  /** Bytes of audit records queued before new ones are dropped (audit-writer.ts). */
  auditMaxQueuedBytes?: number;
  /** A source for the keys not held in the Secret; default: the PKCS#11 token of opts.pkcs11, if any. */
  remoteSigner?: SigningKeySource;
}

/** How often the token server asks its PKCS#11 token whether it still holds the active key. */
const SIGNER_PROBE_MS = 2000;

/**
 * Whether the remote source can sign with the active key, refreshed every
 * SIGNER_PROBE_MS (readiness must answer without waiting for the module).
 * The keys published ahead are probed too, so that a rotation finds its new
 * key already checked and readiness does not blink at the activation.
 */
function watchRemoteSigner(store: KeyStore, source: SigningKeySource) {
  /** kid -> whether the last probe found the source able to sign with it. */
  let usable = new Map<string, boolean>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const probe = async () => {
    const now = Date.now();
    const active = store.signing.activeRecordAt(now);
    const records = [...active ? [active] : [], ...store.signing.pendingRecords(now)].filter((r) => r.pkcs11);
    const next = new Map<string, boolean>();
    for (const r of records) {
      try {
        next.set(r.kid, (await source.health(r)).up);
      } catch {
        next.set(r.kid, false);
      }
    }
    usable = next;
    if (!stopped) timer = setTimeout(() => void probe(), SIGNER_PROBE_MS).unref();
  };
  void probe();
  return {
    /** False while the active key is remote and its source cannot sign with it. */
    ready(nowMs: number): boolean {
      const record = store.signing.activeRecordAt(nowMs);
      return !record?.pkcs11 || usable.get(record.kid) === true;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

export interface RunningTokenServer {
  port: number;
  /** The port of /metrics, when it is served. */
  metricsPort: number | undefined;
  store: KeyStore;
  ready(): boolean;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), then stops the watches. */
  close(graceMs?: number): Promise<void>;
}

/** Starts serving; resolves once the port is bound (readiness comes with the caches). */
export async function startTokenServer(opts: TokenServerOptions, deps: TokenServerDeps = {}): Promise<RunningTokenServer> {
  const log = deps.log ?? createLogger({ level: opts.logLevel, name: 'token-server' });
  let client: KubeClient | undefined;
  let store = deps.store;
  if (!store) {
    client = new KubeClient(opts.kc);
    const kube = new KubeKeyStore(client, {
      operatorNamespace: opts.operatorNamespace, namespaces: opts.namespaces, defaultAudiences: opts.audiences, log,
      maxStalenessMs: opts.maxCacheStalenessMs,
    });
    kube.start();
    void kube.waitForSync().then(() => log.info('caches synced'));
    store = kube;
  }
  const staleness = new StalenessGuard({ boundMs: opts.maxCacheStalenessMs, lastHeard: () => store.lastHeard(), log });
  staleness.start();
  const limiter = new FailureLimiter(deps.limits);
  const exchangeLimiter = new FailureLimiter({ ...EXCHANGE_LIMITS, ...deps.exchangeLimits });
  let signer: ReturnType<typeof watchRemoteSigner> | undefined;
  // Not ready while the apiserver refuses the credential: the caches are no longer refreshed (a fault, not a partition);
  // nor, with --max-cache-staleness, while a cache has heard nothing for longer than that (a partition, by choice).
  const ready = () => {
    const now = Date.now();
    return store.synced() && store.signing.active(now) !== undefined && !store.credentialRefused() && (signer?.ready(now) ?? true)
      && !staleness.stale();
  };
  const metrics = new TokenServerMetrics({
    sizes: () => store.sizes(), rateLimitEntries: () => limiter.size + exchangeLimiter.size, ready, signingKeysProblem: () => store.signing.problem,
    cacheAges: () => staleness.ages(), maxCacheStalenessMs: opts.maxCacheStalenessMs,
  }, deps.defaultMetrics ?? true);
  let token: Pkcs11Token | undefined;
  let remote = deps.remoteSigner;
  if (!remote && opts.pkcs11) {
    token = new Pkcs11Token({ ...opts.pkcs11, log, registry: metrics.registry });
    token.start();
    remote = new Pkcs11KeySource(token);
  }
  if (remote) {
    store.signing.useRemote(remote);
    signer = watchRemoteSigner(store, remote);
  }
  if (client) metrics.instrument(client);
  const reviewer = deps.reviewer ?? (client
    ? new KubeReviewer({
      client, log, observe: (review, outcome) => metrics.review(review, outcome), audiences: opts.tokenReviewAudiences,
    })
    : undefined);
  const jwksFiles = !deps.federation && opts.federationIssuerJwks?.size
    ? new JwksFiles({ files: opts.federationIssuerJwks, log, observe: (result) => metrics.federationFetch('jwks_file', result) }) : undefined;
  jwksFiles?.start();
  const federation = deps.federation ?? new IssuerKeys({
    issuers: allowedIssuers(opts.federationIssuers ?? []), files: jwksFiles, caPem: opts.federationCaPem, log,
    observe: (document, result) => metrics.federationFetch(document, result),
  });
  const audit = opts.auditLog && await openAudit(opts, metrics, log, deps.auditMaxQueuedBytes);
  const lastUsed = new LastUsedRecorder({ client, log, onWrite: (ok) => metrics.lastUsedWrite(ok ? 'ok' : 'error') });
  lastUsed.start();
  const ctx: ServerContext = {
    issuer: normalizeIssuer(opts.issuer),
    defaultAudiences: opts.audiences,
    store,
    limiter,
    exchangeLimiter,
    metrics,
    lastUsed,
    log,
    reviewer,
    federation,
    staleness,
    userTokenTtlMs: opts.userTokenTtlMs ?? DEFAULT_USER_TOKEN_TTL_MS,
    proxies: opts.trustedProxies ?? new TrustedProxies([]),
    audit,
  };
  const tls = opts.tls && loadTlsFiles(opts.tls);
  const server = createTokenHttpServer({ ctx, grants: grantRegistry({ tokenExchange: reviewer !== undefined || federation.enabled }), ready, tls });
  // cert-manager renews the certificate in place: serve the new one without a restart.
  const reloader = opts.tls && server instanceof HttpsServer
    ? new TlsReloader(opts.tls, (o) => server.setSecureContext(o), log) : undefined;
  reloader?.start();
  const metricsServer = opts.metricsPort === undefined ? undefined : createMetricsServer(metrics.registry);
  const listening = [server, ...(metricsServer ? [metricsServer] : [])];
  server.listen(opts.port, opts.host);
  metricsServer?.listen(opts.metricsPort, opts.host);
  try {
    await Promise.all(listening.map((s) => once(s, 'listening')));
  } catch (err) {
    for (const s of listening) s.close();
    reloader?.stop();
    jwksFiles?.stop();
    signer?.stop();
    staleness.stop();
    token?.stop();
    await Promise.all([store.stop(), lastUsed.stop(), audit?.close()]);
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const metricsPort = metricsServer ? (metricsServer.address() as AddressInfo).port : undefined;
  log.info({ port, metricsPort, host: opts.host, tls: !!tls, issuer: ctx.issuer, operatorNamespace: opts.operatorNamespace,
    namespaces: opts.namespaces.length ? opts.namespaces : 'all', tokenExchange: reviewer !== undefined,
    federationIssuers: opts.federationIssuers?.length || opts.federationIssuerJwks?.size ? opts.federationIssuers : 'none (federation off)',
    privateFederationIssuers: opts.federationIssuerJwks?.size ? [...opts.federationIssuerJwks.keys()] : undefined,
    pkcs11: opts.pkcs11 ? { module: opts.pkcs11.modulePath, token: opts.pkcs11.tokenLabel ?? `serial ${opts.pkcs11.tokenSerial}`, sessions: opts.pkcs11.sessions } : 'off',
    userTokenTtlSeconds: ctx.userTokenTtlMs / 1000,
    maxCacheStalenessSeconds: opts.maxCacheStalenessMs === undefined ? 'off' : opts.maxCacheStalenessMs / 1000, tokenReviewAudiences: opts.tokenReviewAudiences?.length ? opts.tokenReviewAudiences : 'the apiserver\'s' },
  'token server listening');
  if (!tls) {
    log.warn({ port }, 'PLAIN HTTP: the token endpoint serves without TLS, so client secrets and tokens cross the network in clear text '
      + '(RFC 6749 2.3.1 and 3.2 require TLS); serve HTTPS with --tls-cert-file and --tls-private-key-file');
  }
  if (audit) log.info({ auditLog: opts.auditLog }, 'audit log of token requests on');
  if (ctx.proxies.broad) {
    log.warn({ trustedProxies: ctx.proxies.size },
      '--insecure-broad-trusted-proxies: X-Forwarded-For is believed from ranges wider than 16 addresses; any client in them can forge its address. ' +
      'Only safe if a NetworkPolicy lets nothing but the proxies reach the token server');
  }

  let closing: Promise<void> | undefined;
  return {
    port,
    metricsPort,
    store,
    ready,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        if (metricsServer) {
          metricsServer.close();
          metricsServer.closeAllConnections();
        }
        await closed;
        clearTimeout(timer);
        reloader?.stop();
        jwksFiles?.stop();
        // The in-flight requests are done: their audit records are queued, and written before the process ends.
        await Promise.all([store.stop(), lastUsed.stop(), audit?.close()]);
        signer?.stop();
        staleness.stop();
        token?.stop();
        log.info('token server stopped');
      })();
      return closing;
    },
  };
}

/** Opens the audit log's stream; its records are counted in the metrics, written or dropped. */
async function openAudit(opts: TokenServerOptions, metrics: TokenServerMetrics, log: Logger, maxQueuedBytes: number | undefined): Promise<TokenAudit> {
  const writer = new AuditWriter({ ...opts.auditLog!, maxQueuedBytes, log, observe: (result, n) => metrics.auditRecords(result, n) });
  await writer.init();
  return new TokenAudit(writer);
}

/** The `token-server` command: serves until SIGTERM or SIGINT, then stops gracefully and resolves. */
export async function runTokenServer(opts: TokenServerOptions): Promise<void> {
  const log = createLogger({ level: opts.logLevel, name: 'token-server' });
  const running = await startTokenServer(opts, { log });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info({ signal }, 'stopping: finishing in-flight requests');
  await running.close();
}
