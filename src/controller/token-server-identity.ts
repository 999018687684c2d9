/**
 * The token server's own identity in sidecar mode. The token server faces
 * the network, so it must never hold the controller's rights (which include
 * writing every credentials Secret) even though it runs in the controller's
 * pod. The pod mounts no token for everyone: the controller container mounts
 * its own, and this module, running in every controller replica (leader or
 * not, since each has its own sidecar), asks the apiserver for a token of the
 * token server's ServiceAccount (TokenRequest, which a Role allows for that
 * one ServiceAccount only) and writes it into an in-memory volume that the
 * token-server container mounts read-only where a pod's token always is:
 * `token`, `ca.crt` and `namespace`, so the token server loads it like any
 * in-cluster client (and client-node re-reads the token file every minute).
 *
 * The token lives ten minutes (the shortest TokenRequest allows) and is
 * renewed at 80% of its life, as the kubelet renews projected tokens, and
 * retried with capped backoff when the apiserver does not answer. It cannot
 * be bound to the Pod: the apiserver binds a token only to a Pod that runs
 * as the same ServiceAccount; the short life bounds a leaked token instead. Files are replaced by rename, so the
 * token server never reads half a token. The token is never logged.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { paths, type KubeClient } from '../kube/client.ts';
import type { Logger } from '../shared/log.ts';

export interface TokenServerIdentityOptions {
  namespace: string;
  serviceAccount: string;
  /** The folder the token-server container mounts as its ServiceAccount folder. */
  dir: string;
  /** The apiserver's CA, PEM: written as ca.crt. */
  caPem: string;
  log: Logger;
  expirationSeconds?: number;
}

interface TokenRequestAnswer {
  status?: { token?: string; expirationTimestamp?: string };
}

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

export class TokenServerIdentity {
  private readonly client: KubeClient;
  private readonly opts: TokenServerIdentityOptions;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private failures = 0;
  /** When the token written last expires (ms), for tests and logs. */
  expiresAtMs = 0;

  constructor(client: KubeClient, opts: TokenServerIdentityOptions) {
    this.client = client;
    this.opts = opts;
  }

  /** Writes ca.crt and namespace, then the first token; keeps renewing it until `stop()`. */
  start(): void {
    mkdirSync(this.opts.dir, { recursive: true });
    this.writeAtomically('ca.crt', this.opts.caPem);
    this.writeAtomically('namespace', this.opts.namespace);
    void this.renew();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    const { namespace, serviceAccount } = this.opts;
    const expirationSeconds = this.opts.expirationSeconds ?? 600;
    let nextMs: number;
    try {
      const answer = await this.client.create<TokenRequestAnswer>(
        `${paths.object('', 'v1', 'serviceaccounts', namespace, serviceAccount)}/token`, {
          apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
          spec: { audiences: [], expirationSeconds },
        });
      const token = answer.status?.token;
      if (!token) throw new Error('the TokenRequest answered without a token');
      if (this.stopped) return;
      this.writeAtomically('token', token);
      const first = this.expiresAtMs === 0;
      const issuedAt = Date.now();
      const expires = Date.parse(answer.status?.expirationTimestamp ?? '');
      this.expiresAtMs = Number.isNaN(expires) ? issuedAt + expirationSeconds * 1000 : expires;
      if (first || this.failures > 0) {
        this.opts.log.info({ serviceAccount: `${namespace}/${serviceAccount}`, expiresAt: new Date(this.expiresAtMs).toISOString() },
          "wrote the token server's ServiceAccount token");
      }
      this.failures = 0;
      nextMs = Math.max(RETRY_MIN_MS, (this.expiresAtMs - issuedAt) * 0.8);
    } catch (err) {
      this.failures++;
      nextMs = Math.min(RETRY_MIN_MS * 2 ** (this.failures - 1), RETRY_MAX_MS);
      this.opts.log.warn({ err, serviceAccount: `${namespace}/${serviceAccount}`, retryInMs: nextMs },
        "could not get a token for the token server's ServiceAccount; retrying");
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => { void this.renew(); }, nextMs);
    this.timer.unref();
  }

  private writeAtomically(name: string, content: string): void {
    const file = join(this.opts.dir, name);
    const tmp = join(this.opts.dir, `.${name}.tmp`);
    writeFileSync(tmp, content, { mode: 0o640 });
    renameSync(tmp, file);
  }
}

/** The apiserver's CA as PEM, from a kubeconfig's cluster (in a pod: the mounted ca.crt). */
export function clusterCaPem(cluster: { caData?: string; caFile?: string } | null | undefined): string {
  if (cluster?.caData) return Buffer.from(cluster.caData, 'base64').toString('utf8');
  if (cluster?.caFile) return readFileSync(cluster.caFile, 'utf8');
  return '';
}
