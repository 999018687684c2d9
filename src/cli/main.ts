#!/usr/bin/env node
/**
 * apikey-operator: one executable for the controller, the token server and
 * the kubectl plugin's commands.
 */
import { readFileSync } from 'node:fs';
import { MAX_TOKEN_TTL_SECONDS } from '../api/index.ts';
import { allowedIssuers, privateIssuers } from '../federation/issuers.ts';
import { ConfigError, defaultNamespace, loadKubeConfig, waitForInClusterToken } from '../kube/config.ts';
import { parseExpiryWarnings } from '../controller/expiry.ts';
import { parseDuration } from '../shared/duration.ts';
import { TrustedProxies } from '../token-server/proxies.ts';
import { MIN_MAX_STALENESS_MS } from '../token-server/staleness.ts';
import { loadJwksFile } from '../token-server/issuer-jwks-files.ts';
import { loadTlsFiles, waitForTlsFiles } from '../token-server/tls.ts';
import { escapeTerminalLines } from './plugin/terminal.ts';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../shared/signing-keys.ts';
import type { Pkcs11Config } from '../shared/pkcs11/token.ts';
import {
  CONSOLE_FLAGS, CONTROLLER_FLAGS, csv, intFlag, parseFlags, sizeFlag, TOKEN_SERVER_FLAGS, usage, UsageError,
} from '../client/options.ts';

const HELP = `Usage: apikey-operator <command> [flags]

Commands:
  controller     reconcile Deployments and ApiKeys (apikeys.dev) into credentials Secrets
  token-server   serve the OAuth 2.0 token endpoint, JWKS, discovery, introspection and forward-auth
  console        serve the web console: locally with your kubeconfig (as kubectl apikey console does), or
                 in a cluster with OpenID Connect sign-in (--oidc-issuer-url), as each person
  help           show this help

  create, list, describe, rotate, delete, token, deployments, version
                 the kubectl plugin's commands (kubectl apikey ...): run 'apikey-operator list --help'

Run 'apikey-operator <command> --help' for a command's flags.`;

function durationFlag(name: string, v: string | undefined, minMs = 1): number {
  const ms = parseDuration(v);
  if (ms === undefined || ms < minMs) throw new UsageError(`--${name} must be a duration such as 720h, 90m or 30s`);
  return ms;
}

/** --expiry-warnings: durations before spec.expiresAt (controller/expiry.ts). */
function expiryWarningsFlag(v: string | undefined): number[] {
  try {
    return parseExpiryWarnings(v ?? '');
  } catch (err) {
    throw new UsageError(`--expiry-warnings: ${(err as Error).message}`);
  }
}

/** --user-token-ttl: a duration from 1s to 24h (the ceiling of every token this server issues). */
function userTokenTtl(v: string | undefined): number {
  const ms = durationFlag('user-token-ttl', v, 1000);
  if (ms > MAX_TOKEN_TTL_SECONDS * 1000) throw new UsageError('--user-token-ttl must be at most 24h');
  return ms;
}

/**
 * `apikey-operator console` in in-cluster mode: people sign in with OpenID
 * Connect and every Kubernetes call is made with their ID token; the
 * console's own identity (its ServiceAccount, any kubeconfig) is never used.
 */
async function runInClusterConsole(f: Record<string, string | undefined>, port: number): Promise<void> {
  const { inClusterSettings } = await import('../console/in-cluster-options.ts');
  const { InClusterSignIn } = await import('../console/in-cluster.ts');
  const { consoleTokenUrl } = await import('../console/local.ts');
  const { runConsole } = await import('../console/main.ts');
  const { createLogger } = await import('../shared/log.ts');
  const settings = inClusterSettings(f);
  const log = createLogger({ level: f['log-level'], name: 'apikey-operator-console' });
  const signIn = new InClusterSignIn({ settings, log, ...f.namespace ? { defaultNamespace: f.namespace } : {} });
  log.info({ issuer: settings.oidc.issuerUrl, clientId: settings.oidc.clientId, publicUrl: settings.publicUrl, apiserver: settings.apiserver.server },
    'console in in-cluster mode: people sign in with OpenID Connect');
  try {
    await runConsole({
      signIn, host: f.host!, port, tokenUrl: consoleTokenUrl(f['token-url']), open: false, log, secureCookies: settings.secureCookies,
    });
  } finally {
    await signIn.close();
  }
}

/** --max-cache-staleness: empty for off, else a duration of at least MIN_MAX_STALENESS_MS. */
function maxCacheStaleness(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const ms = parseDuration(v);
  if (ms === undefined) throw new UsageError('--max-cache-staleness must be a duration such as 30s or 2m, or empty for no bound');
  if (ms < MIN_MAX_STALENESS_MS) {
    throw new UsageError(`--max-cache-staleness must be at least ${MIN_MAX_STALENESS_MS / 1000}s: the caches must hear from the Kubernetes API several times within it`);
  }
  return ms;
}

/** --federation-issuers: https URLs, each exactly as its tokens' iss. */
function federationIssuersFlag(v: string | undefined): string[] {
  const issuers = csv(v);
  try {
    allowedIssuers(issuers);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return issuers;
}

/** --federation-issuer-jwks: ISSUER=FILE pairs, issuers not in --federation-issuers. */
function federationIssuerJwksFlag(v: string | undefined, discovered: readonly string[]): ReadonlyMap<string, string> {
  try {
    return privateIssuers(csv(v), new Set(discovered));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The token server reads every private issuer's file at start: one that does not load is an error of the flag. */
function checkJwksFiles(files: ReadonlyMap<string, string>): void {
  for (const path of files.values()) {
    try {
      loadJwksFile(path);
    } catch (err) {
      throw new UsageError(`--federation-issuer-jwks: ${(err as Error).message}`);
    }
  }
}

/** --federation-ca-file: a PEM bundle holding at least one certificate. */
function federationCaFile(path: string | undefined): string | undefined {
  if (!path) return undefined;
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--federation-ca-file: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--federation-ca-file: ${path} holds no PEM certificate`);
  return pem;
}

const PKCS11_LABEL_PREFIX = /^[\x21-\x7e]{1,64}$/;

/** The --pkcs11-* flags, or undefined without --pkcs11-module (keys in the Secret). */
function pkcs11Flags(f: Record<string, string | undefined>): Pkcs11Config | undefined {
  const modulePath = f['pkcs11-module'] ?? '';
  const tokenLabel = f['pkcs11-token-label'] ?? '';
  const tokenSerial = f['pkcs11-token-serial'] ?? '';
  const pinFile = f['pkcs11-pin-file'] ?? '';
  if (!modulePath) {
    if (tokenLabel || tokenSerial || pinFile) throw new UsageError('--pkcs11-token-label, --pkcs11-token-serial and --pkcs11-pin-file need --pkcs11-module');
    return undefined;
  }
  if (!tokenLabel === !tokenSerial) throw new UsageError('--pkcs11-module needs exactly one of --pkcs11-token-label and --pkcs11-token-serial');
  if (!pinFile) throw new UsageError('--pkcs11-module needs --pkcs11-pin-file (the PIN is never a flag value)');
  const labelPrefix = f['pkcs11-key-label-prefix'] ?? '';
  if (!PKCS11_LABEL_PREFIX.test(labelPrefix)) throw new UsageError('--pkcs11-key-label-prefix must be 1 to 64 printable ASCII characters, no spaces');
  return {
    modulePath, pinFile, labelPrefix,
    ...tokenLabel ? { tokenLabel } : { tokenSerial },
    sessions: intFlag('pkcs11-sessions', f['pkcs11-sessions'], 1, 256),
  };
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'controller': {
      const f = parseFlags(rest, CONTROLLER_FLAGS);
      if (f.help) { console.log(usage('controller', 'Reconciles Deployments and ApiKeys into credentials Secrets, and manages the signing keys.', CONTROLLER_FLAGS)); return 0; }
      const alg = f['signing-algorithm'] as SigningAlgorithm;
      if (!SIGNING_ALGORITHMS.includes(alg)) throw new UsageError(`--signing-algorithm must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
      const tokenServerServiceAccount = f['token-server-service-account'] ?? '';
      const tokenServerTokenDir = f['token-server-token-dir'] ?? '';
      if (!tokenServerServiceAccount !== !tokenServerTokenDir) {
        throw new UsageError('--token-server-service-account and --token-server-token-dir go together');
      }
      const servingCertSecret = f['serving-cert-secret'] ?? '';
      const servingCertNames = csv(f['serving-cert-dns-names']);
      if (!servingCertSecret !== !servingCertNames.length) throw new UsageError('--serving-cert-secret and --serving-cert-dns-names go together');
      const servingCert = servingCertSecret ? {
        secretName: servingCertSecret,
        dnsNames: servingCertNames,
        validityMs: durationFlag('serving-cert-validity', f['serving-cert-validity'], 30_000),
        caValidityMs: durationFlag('serving-ca-validity', f['serving-ca-validity'], 3600_000),
      } : undefined;
      if (servingCert && servingCert.validityMs * 3 > servingCert.caValidityMs) {
        throw new UsageError('--serving-cert-validity must be at most a third of --serving-ca-validity: a serving certificate never outlives its CA');
      }
      const pkcs11 = pkcs11Flags(f);
      const kc = loadKubeConfig({ kubeconfig: f.kubeconfig });
      const { runController } = await import('../controller/main.ts');
      await runController({
        kc,
        operatorNamespace: f['operator-namespace'] || defaultNamespace(kc),
        namespaces: csv(f.namespaces),
        audiences: csv(f.audiences),
        workers: intFlag('workers', f.workers, 1, 256),
        tokenUrl: f['token-url']!,
        signingAlgorithm: alg,
        signingKeyRotationMs: durationFlag('signing-key-rotation', f['signing-key-rotation'], 3600_000),
        signingKeyPublishLeadMs: durationFlag('signing-key-publish-lead', f['signing-key-publish-lead'], 0),
        healthPort: intFlag('health-port', f['health-port'], 0, 65535),
        leaderElect: f['leader-elect'] !== 'false',
        resyncMs: durationFlag('resync', f.resync, 60_000),
        expiryWarningsMs: expiryWarningsFlag(f['expiry-warnings']),
        leaseDurationMs: durationFlag('leader-elect-lease-duration', f['leader-elect-lease-duration'], 1000),
        renewDeadlineMs: durationFlag('leader-elect-renew-deadline', f['leader-elect-renew-deadline'], 1000),
        retryPeriodMs: durationFlag('leader-elect-retry-period', f['leader-elect-retry-period'], 1000),
        logLevel: f['log-level']!,
        // The controller allows the private issuers too; their files are the token server's alone.
        federationIssuers: ((issuers) => [...issuers, ...federationIssuerJwksFlag(f['federation-issuer-jwks'], issuers).keys()])(
          federationIssuersFlag(f['federation-issuers'])),
        tokenServerIdentity: tokenServerServiceAccount
          ? { serviceAccount: tokenServerServiceAccount, dir: tokenServerTokenDir } : undefined,
        servingCert,
        pkcs11,
      });
      return 0;
    }
    case 'token-server': {
      const f = parseFlags(rest, TOKEN_SERVER_FLAGS);
      if (f.help) { console.log(usage('token-server', 'Serves POST /oauth/token and the rest of the token endpoint.', TOKEN_SERVER_FLAGS)); return 0; }
      const port = intFlag('port', f.port, 0, 65535);
      const metricsPort = intFlag('metrics-port', f['metrics-port'], 0, 65535);
      const certFile = f['tls-cert-file'] ?? '';
      const keyFile = f['tls-private-key-file'] ?? '';
      if (!certFile !== !keyFile) throw new UsageError('--tls-cert-file and --tls-private-key-file go together');
      const tls = certFile ? { certFile, keyFile } : undefined;
      if (tls) {
        // The controller (--serving-cert-secret) or cert-manager may not have written the mounted Secret yet.
        await waitForTlsFiles(tls, (await import('../shared/log.ts')).createLogger({ level: f['log-level'], name: 'token-server' }));
        try {
          loadTlsFiles(tls);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
      }
      const userTokenTtlMs = userTokenTtl(f['user-token-ttl']);
      const maxCacheStalenessMs = maxCacheStaleness(f['max-cache-staleness']);
      const federationIssuers = federationIssuersFlag(f['federation-issuers']);
      const federationIssuerJwks = federationIssuerJwksFlag(f['federation-issuer-jwks'], federationIssuers);
      checkJwksFiles(federationIssuerJwks);
      const federationCaPem = federationCaFile(f['federation-ca-file']);
      const pkcs11 = pkcs11Flags(f);
      let trustedProxies: TrustedProxies;
      try {
        trustedProxies = new TrustedProxies(csv(f['trusted-proxies']), { allowBroad: f['insecure-broad-trusted-proxies'] === 'true' });
      } catch (err) {
        throw new UsageError(`--trusted-proxies: ${(err as Error).message}`);
      }
      const auditPath = f['audit-log-path'] ?? '';
      const auditLog = auditPath ? {
        path: auditPath,
        maxSizeBytes: sizeFlag('audit-log-maxsize', f['audit-log-maxsize']),
        maxBackups: intFlag('audit-log-maxbackup', f['audit-log-maxbackup'], 0, 100_000),
      } : undefined;
      // In sidecar mode the controller writes this container's token a moment after the pod starts.
      await waitForInClusterToken({ kubeconfig: f.kubeconfig });
      const kc = loadKubeConfig({ kubeconfig: f.kubeconfig });
      const { runTokenServer } = await import('../token-server/main.ts');
      await runTokenServer({
        kc,
        port,
        metricsPort: metricsPort === 0 ? undefined : metricsPort,
        host: f.host!,
        issuer: f.issuer || `${tls ? 'https' : 'http'}://localhost:${port}`,
        audiences: csv(f.audiences),
        operatorNamespace: f['operator-namespace'] || defaultNamespace(kc),
        namespaces: csv(f.namespaces),
        logLevel: f['log-level']!,
        userTokenTtlMs,
        maxCacheStalenessMs,
        trustedProxies,
        tokenReviewAudiences: csv(f['token-review-audiences']),
        tls,
        federationIssuers,
        federationIssuerJwks,
        federationCaPem,
        auditLog,
        pkcs11,
      });
      return 0;
    }
    case 'console': {
      const f = parseFlags(rest, CONSOLE_FLAGS);
      if (f.help) { console.log(usage('console', 'Serves the web console for API keys and temporary tokens; every Kubernetes call is made with your credentials.', CONSOLE_FLAGS)); return 0; }
      const port = intFlag('port', f.port, 0, 65535);
      const { isInClusterMode } = await import('../console/in-cluster-options.ts');
      if (isInClusterMode(f)) {
        await runInClusterConsole(f, port);
        return 0;
      }
      const { isLoopbackHost } = await import('../console/local.ts');
      if (!isLoopbackHost(f.host!)) throw new UsageError('--host must be a loopback address (127.0.0.1 or ::1): the local console acts with your credentials');
      const kc = loadKubeConfig({ kubeconfig: f.kubeconfig, context: f.context || undefined });
      const { consoleTokenUrl } = await import('../console/local.ts');
      const { LocalSignIn } = await import('../console/local.ts');
      const { runConsole } = await import('../console/main.ts');
      const { createLogger } = await import('../shared/log.ts');
      await runConsole({
        signIn: new LocalSignIn({ kc, defaultNamespace: f.namespace || defaultNamespace(kc) }),
        host: f.host!, port, tokenUrl: consoleTokenUrl(f['token-url']), open: f.open === 'true',
        log: createLogger({ level: f['log-level'], name: 'apikey-operator-console' }),
      });
      return 0;
    }
    case 'create': case 'list': case 'describe': case 'rotate': case 'delete': case 'token': case 'deployments': case 'version': {
      // The kubectl plugin's commands: it prints its own errors and picks its exit code.
      const { runPlugin } = await import('./plugin/index.ts');
      return runPlugin(argv);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(HELP);
      return command === undefined ? 2 : 0;
    default: {
      throw new UsageError(`unknown command "${command}"\n\n${HELP}`);
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    // An error can quote the cluster or a kubeconfig: escaped, as everything the plugin prints.
    if (err instanceof UsageError || err instanceof ConfigError) {
      console.error(`error: ${escapeTerminalLines(err.message)}`);
      process.exitCode = 2;
    } else {
      console.error(`error: ${escapeTerminalLines((err as Error).message)}`);
      process.exitCode = 1;
    }
  },
);
