/**
 * A kubeconfig as kubectl reads it: clusters, users, contexts and the current
 * context, from a file (relative paths resolved against its folder) or from a
 * pod's ServiceAccount. The field names are client-node's, so either kind of
 * KubeConfig can be handed to KubeClient. client-node's own KubeConfig is not
 * loaded here: importing it costs a process about 85 MB of resident memory
 * (its generated API classes), more than the whole controller needs.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';

export interface Cluster {
  readonly name: string;
  readonly server: string;
  readonly caData?: string;
  readonly caFile?: string;
  readonly skipTLSVerify?: boolean;
  readonly tlsServerName?: string;
  readonly proxyUrl?: string;
}

/** An exec credential plugin, as the kubeconfig gives it (client-node reads the same shape). */
export interface ExecConfig {
  readonly command: string;
  readonly args?: string[];
  readonly env?: { name: string; value: string }[];
  readonly apiVersion?: string;
  readonly [more: string]: unknown;
}

export interface AuthProvider {
  readonly name: string;
  readonly config: Record<string, string>;
}

export interface User {
  readonly name: string;
  /**
   * Why this user cannot be used, as kubectl would say it (an auth provider
   * kubectl refuses); set by parseKubeconfig, thrown by credentialsOf when the
   * user is used, so that a kubeconfig with such a user in an unused context
   * still loads, as in kubectl.
   */
  readonly refused?: string;
  readonly token?: string;
  readonly certData?: string | null;
  readonly certFile?: string | null;
  readonly keyData?: string | null;
  readonly keyFile?: string | null;
  readonly username?: string | null;
  readonly password?: string | null;
  readonly impersonateUser?: string | null;
  readonly exec?: ExecConfig | null;
  readonly authProvider?: AuthProvider | null;
}

export interface Context {
  readonly name: string;
  readonly cluster: string;
  readonly user?: string;
  readonly namespace?: string;
}

export interface KubeConfigOptions {
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext: string;
}

/**
 * The auth providers of a kubeconfig, as kubectl (client-go 1.26 and later)
 * accepts them: `oidc` only, which refreshes its ID token over HTTPS and runs
 * nothing. kubectl removed `gcp` and `azure` (client-node's versions build a
 * shell command from `cmd-path`/`cmd-args` and run it) and has no other; a
 * command to run is written as `exec:`, kubectl's credential plugins, where
 * people who vet a kubeconfig look for it. Only the keys kubectl's oidc
 * provider reads are kept: client-node would run `config.exec` of any provider.
 */
export const OIDC_CONFIG_KEYS = [
  'client-id', 'client-secret', 'id-token', 'refresh-token', 'idp-issuer-url',
  'idp-certificate-authority', 'idp-certificate-authority-data', 'extra-scopes',
] as const;

/** kubectl's own words for the providers it removed (client-go plugin/pkg/client/auth/{gcp,azure}). */
export const REMOVED_AUTH_PROVIDERS: Readonly<Record<string, string>> = {
  gcp: 'The gcp auth plugin has been removed.\nPlease use the "gke-gcloud-auth-plugin" kubectl/client-go credential plugin instead.\n' +
    'See https://cloud.google.com/blog/products/containers-kubernetes/kubectl-auth-changes-in-gke for further details',
  azure: 'The azure auth plugin has been removed.\nPlease use the https://github.com/Azure/kubelogin kubectl/client-go credential plugin instead.\n' +
    'See https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins for further details',
};

/** Why kubectl refuses the auth provider `name`; undefined for oidc. */
export function authProviderRefusal(name: string): string | undefined {
  if (name === 'oidc') return undefined;
  return REMOVED_AUTH_PROVIDERS[name] ?? `no Auth Provider found for name ${JSON.stringify(name)}`;
}

/** A kubeconfig user's `auth-provider`: kept (oidc, its own keys only) or refused, with kubectl's reason. */
function authProviderOf(raw: Raw, hasExec: boolean): Pick<User, 'authProvider' | 'refused'> {
  const name = typeof raw.name === 'string' ? raw.name : '';
  const refusal = authProviderRefusal(name);
  if (refusal) return { refused: refusal };
  if (hasExec) return { refused: 'exec and auth-provider cannot be used in combination: keep one of them' };
  return { authProvider: { name, config: oidcConfigOf(raw.config) } };
}

/** The keys kubectl's oidc provider reads, and nothing else (client-node runs a `config.exec` of any provider). */
export function oidcConfigOf(config: unknown): Record<string, string> {
  const all = record(config);
  const kept: Record<string, string> = {};
  for (const k of OIDC_CONFIG_KEYS) if (typeof all[k] === 'string') kept[k] = all[k];
  return kept;
}

/** Where a pod's ServiceAccount files are, under an optional root (tests point it at a folder). */
export const serviceAccountFiles = (root = '') => {
  const dir = `${root}/var/run/secrets/kubernetes.io/serviceaccount`;
  return { token: `${dir}/token`, ca: `${dir}/ca.crt`, namespace: `${dir}/namespace` };
};

/** The user of an in-cluster config: its token is a file that the kubelet rotates, so it is re-read. */
export const TOKEN_FILE_PROVIDER = 'tokenFile';

type Raw = Record<string, unknown>;
const record = (v: unknown): Raw => (v && typeof v === 'object' ? v as Raw : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const absolute = (root: string, file: string | undefined) => (file && !isAbsolute(file) ? join(root, file) : file);

function named(list: unknown, what: string): { name: string; body: Raw }[] {
  if (!Array.isArray(list)) return [];
  return list.map((e: unknown, i) => {
    const name = str(record(e).name);
    if (!name) throw new Error(`${what}s[${i}].name is missing`);
    return { name, body: record(record(e)[what]) };
  });
}

/** Parses a kubeconfig document; relative file paths are resolved against `root`. */
export function parseKubeconfig(text: string, root: string): KubeConfigOptions {
  const doc = record(parse(text));
  const clusters = named(doc.clusters, 'cluster').map(({ name, body: c }, i): Cluster => {
    const server = str(c.server);
    if (!server) throw new Error(`clusters[${i}].cluster.server is missing`);
    return {
      name, server: server.replace(/\/$/, ''),
      caData: str(c['certificate-authority-data']), caFile: absolute(root, str(c['certificate-authority'])),
      skipTLSVerify: c['insecure-skip-tls-verify'] === true, tlsServerName: str(c['tls-server-name']), proxyUrl: str(c['proxy-url']),
    };
  });
  const users = named(doc.users, 'user').map(({ name, body: u }): User => {
    const tokenFile = absolute(root, str(u['token-file']));
    return {
      name,
      token: str(u.token) ?? (tokenFile ? readFileSync(tokenFile, 'utf8').trim() : undefined),
      certData: str(u['client-certificate-data']), certFile: absolute(root, str(u['client-certificate'])),
      keyData: str(u['client-key-data']), keyFile: absolute(root, str(u['client-key'])),
      username: str(u.username), password: str(u.password), impersonateUser: str(u.as),
      exec: u.exec ? u.exec as unknown as ExecConfig : undefined,
      ...(u['auth-provider'] ? authProviderOf(record(u['auth-provider']), !!u.exec) : {}),
    };
  });
  const contexts = named(doc.contexts, 'context').map(({ name, body: c }, i): Context => {
    const cluster = str(c.cluster);
    if (!cluster) throw new Error(`contexts[${i}].context.cluster is missing`);
    return { name, cluster, user: str(c.user), namespace: str(c.namespace) };
  });
  return { clusters, users, contexts, currentContext: str(doc['current-context']) ?? '' };
}

export class KubeConfig {
  private clusters: Cluster[] = [];
  private users: User[] = [];
  private contexts: Context[] = [];
  private currentContext = '';

  loadFromOptions(o: KubeConfigOptions): void {
    this.clusters = o.clusters;
    this.users = o.users;
    this.contexts = o.contexts;
    this.currentContext = o.currentContext;
  }

  loadFromFile(file: string): void {
    this.loadFromOptions(parseKubeconfig(readFileSync(file, 'utf8'), dirname(file)));
  }

  /**
   * A pod's ServiceAccount: the apiserver at KUBERNETES_SERVICE_HOST:PORT,
   * its CA and the token file (read again as it rotates), as client-go does.
   */
  loadFromCluster(root = ''): void {
    const host = process.env.KUBERNETES_SERVICE_HOST ?? '';
    const port = process.env.KUBERNETES_SERVICE_PORT ?? '';
    const scheme = ['80', '8080', '8001'].includes(port) ? 'http' : 'https';
    const files = serviceAccountFiles(root);
    let namespace: string | undefined;
    try { namespace = readFileSync(files.namespace, 'utf8'); } catch { /* none */ }
    this.loadFromOptions({
      clusters: [{ name: 'inCluster', server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`, caFile: files.ca, skipTLSVerify: false }],
      users: [{ name: 'inClusterUser', authProvider: { name: TOKEN_FILE_PROVIDER, config: { tokenFile: files.token } } }],
      contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser', namespace }],
      currentContext: 'inClusterContext',
    });
  }

  getClusters(): Cluster[] { return this.clusters; }
  getUsers(): User[] { return this.users; }
  getContexts(): Context[] { return this.contexts; }
  getCurrentContext(): string { return this.currentContext; }
  setCurrentContext(name: string): void { this.currentContext = name; }

  getContextObject(name: string): Context | null {
    return this.contexts.find((c) => c.name === name) ?? null;
  }

  getCurrentCluster(): Cluster | null {
    const ctx = this.getContextObject(this.currentContext);
    return (ctx && this.clusters.find((c) => c.name === ctx.cluster)) ?? null;
  }

  getCurrentUser(): User | null {
    const ctx = this.getContextObject(this.currentContext);
    return (ctx && this.users.find((u) => u.name === ctx.user)) ?? null;
  }
}
