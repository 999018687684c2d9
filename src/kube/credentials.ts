/**
 * How requests to the apiserver authenticate, from a kubeconfig's current
 * cluster and user: one pooled undici dispatcher carrying the cluster's CA,
 * the client certificate and the TLS checks, and per request the
 * Authorization and Impersonate-User headers (a static token, a token file
 * read again every minute as the kubelet rotates a ServiceAccount token, or
 * a user name and password).
 *
 * Exec plugins, the OIDC auth provider and proxies are rare for an operator
 * and need much code, so they are left to client-node, loaded only when a
 * kubeconfig asks for one of them: importing it costs a process about 85 MB
 * of resident memory. Only what kubectl accepts reaches it (checkUsable): its
 * gcp and azure auth providers, which kubectl removed, run a shell command.
 */
import { readFileSync } from 'node:fs';
import { Agent, type Dispatcher } from 'undici';
import { authProviderRefusal, oidcConfigOf, TOKEN_FILE_PROVIDER, type Cluster, type User } from './kubeconfig.ts';

/** What a KubeClient needs of a kubeconfig: ours, or client-node's. */
export interface KubeConfigLike {
  getCurrentCluster(): Cluster | null;
  getCurrentUser(): User | null;
}

export interface Authentication {
  /** The connection pool to send the request through. */
  dispatcher: Dispatcher;
  headers: Record<string, string>;
}

export interface Credentials {
  /** The dispatcher and headers for the next request to `url`. */
  authenticate(url: string): Promise<Authentication>;
}

/** How long a token read from a file is used before the file is read again (client-go's period). */
export const TOKEN_FILE_REREAD_MS = 60_000;

/** True when the user or cluster needs client-node: an exec plugin, an auth provider other than a token file, a proxy. */
export function needsClientNode(cluster: Cluster, user: User | null): boolean {
  return !!cluster.proxyUrl || !!user?.exec || (!!user?.authProvider && !tokenFileOf(user));
}

function tokenFileOf(user: User | null): string | undefined {
  const p = user?.authProvider;
  return p && (p.name === TOKEN_FILE_PROVIDER || p.config?.tokenFile) ? p.config?.tokenFile : undefined;
}

const fileOrData = (file: string | null | undefined, data: string | null | undefined): Buffer | undefined =>
  file ? readFileSync(file) : data ? Buffer.from(data, 'base64') : undefined;

/**
 * The pool for `cluster` with `user`'s client certificate. Plain http is
 * refused unless the kubeconfig skips TLS verification, as client-node does.
 */
export function clusterDispatcher(cluster: Cluster, user: User | null): Dispatcher {
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    throw new Error('HTTP protocol is not allowed when skipTLSVerify is not set or false');
  }
  const ca = fileOrData(cluster.caFile, cluster.caData);
  const cert = fileOrData(user?.certFile, user?.certData);
  const key = fileOrData(user?.keyFile, user?.keyData);
  return new Agent({
    connect: {
      ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }),
      ...(cluster.skipTLSVerify && { rejectUnauthorized: false }),
      ...(cluster.tlsServerName && { servername: cluster.tlsServerName }),
      // Below the 60 s idle timeout of common cloud load balancers (client-go uses 30 s too).
      keepAlive: true, keepAliveInitialDelay: 30_000,
    },
  });
}

/** Tokens, token files, client certificates, basic auth: everything but exec plugins, auth providers and proxies. */
class StaticCredentials implements Credentials {
  private readonly cluster: Cluster;
  private readonly user: User | null;
  /** Made at the first request, so that an unreadable certificate fails that request, not the program's start. */
  private dispatcher: Dispatcher | undefined;
  private readonly tokenFile: string | undefined;
  private fileToken: { value: string; readAt: number } | undefined;

  constructor(cluster: Cluster, user: User | null) {
    this.cluster = cluster;
    this.user = user;
    this.tokenFile = tokenFileOf(user);
  }

  private token(): string | undefined {
    if (this.user?.token) return this.user.token;
    if (!this.tokenFile) return undefined;
    if (!this.fileToken || Date.now() - this.fileToken.readAt > TOKEN_FILE_REREAD_MS) {
      this.fileToken = { value: readFileSync(this.tokenFile, 'utf8').trim(), readAt: Date.now() };
    }
    return this.fileToken.value;
  }

  authenticate(): Promise<Authentication> {
    // A throw (an unreadable file) becomes the request's rejection.
    return new Promise((resolve) => resolve(this.current()));
  }

  private current(): Authentication {
    this.dispatcher ??= clusterDispatcher(this.cluster, this.user);
    const headers: Record<string, string> = {};
    const u = this.user;
    if (u?.username) headers.Authorization = `Basic ${Buffer.from(`${u.username}:${u.password ?? ''}`).toString('base64')}`;
    const token = this.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (u?.impersonateUser) headers['Impersonate-User'] = u.impersonateUser;
    return { dispatcher: this.dispatcher, headers };
  }
}

/**
 * client-node's authentication, for what StaticCredentials does not do. Its
 * dispatcher is built anew for every request, so the first one is kept (one
 * connection pool); the headers (a token from an exec plugin, say) come fresh.
 */
class ClientNodeCredentials implements Credentials {
  private readonly cluster: Cluster;
  private readonly user: User | null;
  private loaded: Promise<{ kc: import('@kubernetes/client-node').KubeConfig; lib: typeof import('@kubernetes/client-node') }> | undefined;
  private dispatcher: Dispatcher | undefined;

  constructor(cluster: Cluster, user: User | null) {
    this.cluster = cluster;
    this.user = user;
  }

  private load() {
    this.loaded ??= import('@kubernetes/client-node').then((lib) => {
      const kc = new lib.KubeConfig();
      // credentialsOf checked that the auth provider, if any, is oidc or the token file; each keeps only its own keys.
      const given = this.user ?? { name: 'user' };
      const p = given.authProvider;
      const user = !p ? given : {
        ...given,
        authProvider: p.name === 'oidc' ? { name: 'oidc', config: oidcConfigOf(p.config) } : { name: p.name, config: { tokenFile: p.config?.tokenFile ?? '' } },
      };
      kc.loadFromOptions({
        clusters: [{ ...this.cluster, skipTLSVerify: !!this.cluster.skipTLSVerify }],
        users: [user as import('@kubernetes/client-node').User],
        contexts: [{ name: 'current', cluster: this.cluster.name, user: user.name }],
        currentContext: 'current',
      });
      return { kc, lib };
    });
    return this.loaded;
  }

  async authenticate(url: string): Promise<Authentication> {
    const { kc, lib } = await this.load();
    const ctx = new lib.RequestContext(url, lib.HttpMethod.GET);
    await kc.applySecurityAuthentication(ctx);
    this.dispatcher ??= ctx.getDispatcher() ?? clusterDispatcher(this.cluster, this.user);
    return { dispatcher: this.dispatcher, headers: { ...ctx.getHeaders() } };
  }
}

/**
 * Throws kubectl's refusal for a user kubectl would not use: an auth provider
 * other than oidc (gcp and azure run a shell command in client-node) or the
 * in-cluster token file. A KubeConfig of ours has already refused them when it
 * parsed the file (`refused`); client-node's has not, so the name is checked too.
 */
export function checkUsable(user: User | null): void {
  if (!user) return;
  const name = user.authProvider?.name;
  const refusal = user.refused ?? (name === undefined || name === TOKEN_FILE_PROVIDER ? undefined : authProviderRefusal(name));
  if (refusal) throw new Error(`the kubeconfig's user ${JSON.stringify(user.name)} cannot be used: ${refusal}`);
}

/** The credentials of `kc`'s current cluster and user. */
export function credentialsOf(kc: KubeConfigLike): Credentials {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const user = kc.getCurrentUser();
  checkUsable(user);
  return needsClientNode(cluster, user) ? new ClientNodeCredentials(cluster, user) : new StaticCredentials(cluster, user);
}
