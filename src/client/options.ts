/**
 * Flags of the programs (controller, token server, console) and their
 * parsing, which the CLI and the console share. Every flag has an environment
 * variable (APIKEY_OPERATOR_<FLAG>), shown in --help; a flag on the command
 * line wins. docs/reference/flags.md is generated from these tables
 * (npm run docs:generate).
 */
import { parseArgs } from 'node:util';
import { DEFAULT_EXPIRY_WARNINGS } from '../api/names.ts';

export interface FlagSpec {
  name: string;
  env: string;
  type: 'string' | 'boolean';
  default?: string;
  help: string;
}

export class UsageError extends Error {}

export function envName(flag: string): string {
  return `APIKEY_OPERATOR_${flag.replace(/-/g, '_').toUpperCase()}`;
}

export function flag(name: string, help: string, def?: string, type: 'string' | 'boolean' = 'string'): FlagSpec {
  const special: Record<string, string> = {
    kubeconfig: 'KUBECONFIG',
    'operator-namespace': 'APIKEY_OPERATOR_NAMESPACE',
    namespaces: 'APIKEY_OPERATOR_WATCH_NAMESPACES',
  };
  return { name, env: special[name] ?? envName(name), type, default: def, help };
}

export const COMMON_FLAGS: FlagSpec[] = [
  flag('kubeconfig', 'kubeconfig file, or a colon-separated list merged as kubectl merges it; default: in-cluster ServiceAccount, else ~/.kube/config'),
  flag('operator-namespace', "the operator's namespace (signing keys, Lease); default: POD_NAMESPACE, the ServiceAccount's, the kubeconfig context's, else default"),
  flag('namespaces', 'comma-separated namespaces to watch; default: all'),
  flag('audiences', 'comma-separated default audiences for Deployments that set none', 'apikeys.dev'),
  flag('log-level', 'trace, debug, info, warn, error', 'info'),
  flag('federation-issuers', 'comma-separated https issuer URLs, exactly as in their tokens\' iss, whose OIDC tokens FederatedCredentials may trust (keyless CI); give both programs the same list; default: none, federation off', ''),
  flag('federation-issuer-jwks', 'comma-separated ISSUER=FILE pairs: private issuers (https URLs, exactly as in their tokens\' iss) whose JWKS is given in FILE (a mounted Secret or ConfigMap key) instead of discovered; the token server never contacts them and reads FILE again when it changes (rotation: list the old and new keys); the controller reads only the issuers; give both programs the same list; default: none', ''),
];

/** Signing keys held in a PKCS#11 token (docs/operations/hsm.md); both programs take the same values. */
export const PKCS11_FLAGS: FlagSpec[] = [
  flag('pkcs11-module', 'path of a PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so): generate (controller) and sign with (token server) keys that never leave its token; default: keys in the signing-keys Secret', ''),
  flag('pkcs11-token-label', 'the PKCS#11 token, by its label (or --pkcs11-token-serial)', ''),
  flag('pkcs11-token-serial', 'the PKCS#11 token, by its serial number (or --pkcs11-token-label)', ''),
  flag('pkcs11-pin-file', 'file holding the PKCS#11 user PIN (mount it from a Secret); read at each login, never logged', ''),
  flag('pkcs11-key-label-prefix', 'CKA_LABEL prefix of the signing keys the controller creates in the token', 'apikey-operator-'),
  flag('pkcs11-sessions', 'PKCS#11 sessions in the pool: signatures made at once', '4'),
];

export const CONTROLLER_FLAGS: FlagSpec[] = [
  ...COMMON_FLAGS,
  ...PKCS11_FLAGS,
  flag('workers', 'number of concurrent reconcile workers', '4'),
  flag('token-url', 'the token endpoint URL as seen in-cluster, written to each credentials Secret', 'http://apikey-operator-token.apikey-operator.svc:8080/oauth/token'),
  flag('signing-algorithm', 'ES256 or EdDSA', 'ES256'),
  flag('signing-key-rotation', 'how long a signing key signs before its successor takes over', '720h'),
  flag('signing-key-publish-lead', 'how long a new signing key is published before it signs', '1h'),
  flag('health-port', 'port of /healthz, /readyz and /metrics (0: off)', '8081'),
  flag('leader-elect', 'elect a leader on a Lease so that only one replica writes', 'true', 'boolean'),
  flag('resync', 'how often every object is reconciled again', '10h'),
  flag('expiry-warnings', 'comma-separated durations before an ApiKey\'s spec.expiresAt at which it becomes Expiring=True and gets a Warning event (empty: none)', DEFAULT_EXPIRY_WARNINGS),
  flag('leader-elect-lease-duration', 'how long a lease is held without renewal before others may take it', '15s'),
  flag('leader-elect-renew-deadline', 'how long the leader keeps trying to renew before it gives up', '10s'),
  flag('leader-elect-retry-period', 'how often candidates try to acquire, and the leader renews', '2s'),
  flag('token-server-service-account', "sidecar mode: the token server's own ServiceAccount, whose token this controller requests (TokenRequest) and writes to --token-server-token-dir; default: none", ''),
  flag('serving-cert-secret', "make the token server's serving certificate: the kubernetes.io/tls Secret (operator namespace) to write it to, signed by a CA of this controller's own (Secret apikey-operator-ca), whose bundle is published as the ConfigMap apikey-operator-ca.crt in every watched namespace; default: none (cert-manager's or your own certificate, or plain HTTP)", ''),
  flag('serving-cert-dns-names', 'with --serving-cert-secret: comma-separated DNS names (or IP addresses) of the certificate, the token Service\'s', ''),
  flag('serving-cert-validity', 'with --serving-cert-secret: lifetime of the serving certificate; renewed when a third of it is left', '720h'),
  flag('serving-ca-validity', 'with --serving-cert-secret: lifetime of the CA; a new one joins the bundle when a third of it is left', '87600h'),
  flag('token-server-token-dir', "sidecar mode: the in-memory folder the token-server container mounts as its ServiceAccount folder (token, ca.crt, namespace)", ''),
];

export const TOKEN_SERVER_FLAGS: FlagSpec[] = [
  ...COMMON_FLAGS,
  ...PKCS11_FLAGS,
  flag('tls-cert-file', 'PEM certificate (chain) to serve HTTPS with, TLS 1.2 or later; read again when it changes (cert-manager renewals); default: plain HTTP', ''),
  flag('tls-private-key-file', 'PEM private key of --tls-cert-file', ''),
  flag('port', 'port of the token endpoint, the JWKS, discovery, introspection, /authz, /healthz and /readyz', '8080'),
  flag('metrics-port', 'port of /metrics, on the same --host (0: off)', '9090'),
  flag('host', 'address to listen on', '0.0.0.0'),
  flag('issuer', 'the issuer URL: the iss of every token and the base of the discovery documents; default http://localhost:<port>, set it in production', ''),
  flag('trusted-proxies', 'comma-separated addresses or CIDRs of the reverse proxies (ingress controllers) in front of the token server, whose X-Forwarded-For names the client (for the per-client failure limits); at most 16 addresses each (IPv4 /28, IPv6 /124): only the proxies\' own addresses; default: none', ''),
  flag('insecure-broad-trusted-proxies', 'accept --trusted-proxies ranges wider than 16 addresses (a pod network): every client in them can forge X-Forwarded-For, so only when a NetworkPolicy lets nothing but the proxies reach the token server', 'false', 'boolean'),
  flag('token-review-audiences', "comma-separated audiences a subject token must be bound to for token exchange (the TokenReview's spec.audiences); default: none, the apiserver's own, so any token the cluster accepts (kubectl credentials, OIDC) is accepted", ''),
  flag('federation-ca-file', 'PEM file of CA certificates trusted, besides the system\'s, for the TLS of the --federation-issuers (a private issuer); default: the system\'s only', ''),
  flag('audit-log-path', 'the audit log: one JSON line per token issued or refused; - for stdout (beside the application log, told apart by "kind":"TokenRequest"), else a file, rotated by size; default: off', ''),
  flag('audit-log-maxsize', 'rotate the audit log file before it passes this size: megabytes (as kube-apiserver), or a quantity such as 512Ki or 1Gi; 0: never', '100'),
  flag('audit-log-maxbackup', 'rotated audit log files kept, oldest deleted first; 0: all', '10'),
  flag('max-cache-staleness', "the longest the token server answers from caches that have heard nothing from the Kubernetes API (no list, watch answer, event or bookmark): past it, token requests, introspection and /authz answer 503 temporarily_unavailable and /readyz fails, until the caches hear again; at least 15s (the watches are then restarted every quarter to third of it); default: off, serve through an apiserver outage", ''),
  flag('user-token-ttl', "lifetime of temporary user tokens (token exchange with a Kubernetes identity); at most 24h, and never above a Deployment's maxTokenTTL", '1h'),
];

/** The environment variable that may hold the console's OIDC client secret (never a flag: ps would show it). */
export const CLIENT_SECRET_ENV = 'APIKEY_OPERATOR_OIDC_CLIENT_SECRET';

/** `apikey-operator console` in-cluster mode (src/console/in-cluster-options.ts reads them). */
export const IN_CLUSTER_CONSOLE_FLAGS: FlagSpec[] = [
  flag('oidc-issuer-url', 'in-cluster mode: the OpenID Connect issuer people sign in at, the one the API server trusts for ID tokens; setting it selects in-cluster mode', ''),
  flag('oidc-client-id', "in-cluster mode: the console's client id at the issuer; the API server must accept it as an audience of ID tokens", ''),
  flag('oidc-client-secret-file', `in-cluster mode: file holding the client secret (a mounted Secret); or set ${CLIENT_SECRET_ENV}; never given on the command line`, ''),
  flag('oidc-ca-file', "in-cluster mode: PEM CA bundle to trust for the issuer, besides the system's", ''),
  flag('oidc-scopes', 'in-cluster mode: comma-separated scopes to ask for; add the one your provider needs to put the groups claim in ID tokens (often groups)', 'openid,email,profile'),
  flag('public-url', 'in-cluster mode: the URL people open the console at (e.g. https://console.example.com); the redirect URI registered at the issuer is this URL + /auth/callback', ''),
  flag('apiserver-url', 'in-cluster mode: the API server to call with the signed-in person\'s ID token; default: https://KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT', ''),
  flag('apiserver-ca-file', `in-cluster mode: the API server's CA; default: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt`, ''),
];

/** A console flag whose variable is its own (APIKEY_OPERATOR_CONSOLE_PORT), apart from the token server's --port and the operator's namespace. */
function consoleFlag(name: string, help: string, def?: string, type: 'string' | 'boolean' = 'string'): FlagSpec {
  return { ...flag(name, help, def, type), env: envName(`console-${name}`) };
}

/** `apikey-operator console`: the web console (local mode: the person's kubeconfig, on a loopback address; in-cluster mode: OpenID Connect). */
export const CONSOLE_FLAGS: FlagSpec[] = [
  flag('kubeconfig', 'kubeconfig file whose credentials every Kubernetes call of the console uses (local mode); default: KUBECONFIG, else ~/.kube/config'),
  flag('context', "kubeconfig context (local mode); default: the kubeconfig's current context", ''),
  consoleFlag('namespace', "namespace shown first when you may not list across namespaces; default: the context's (local mode)", ''),
  consoleFlag('host', 'address to listen on: a loopback address in local mode (it serves this machine only); in-cluster mode, e.g. 0.0.0.0', '127.0.0.1'),
  consoleFlag('port', 'port to listen on (0: a free one)', '0'),
  flag('token-url', 'the token endpoint as people reach it: in the curl shown for a new key, and where /token exchanges your token; default: the TOKEN_URL of the key\'s Secret, and no /token', ''),
  consoleFlag('open', 'open the sign-in URL in a browser, if one can be found', 'false', 'boolean'),
  flag('log-level', 'trace, debug, info, warn, error', 'info'),
  ...IN_CLUSTER_CONSOLE_FLAGS,
];

export function usage(command: string, summary: string, flags: FlagSpec[]): string {
  const lines = [`Usage: apikey-operator ${command} [flags]`, '', summary, '', 'Flags:'];
  for (const f of flags) {
    const def = f.default !== undefined && f.default !== '' ? ` (default ${f.default})` : '';
    lines.push(`  --${f.name}${f.type === 'string' ? ' VALUE' : ''}`, `      ${f.help}${def} [env ${f.env}]`);
  }
  return lines.join('\n');
}

/** Flags, then environment, then defaults. Unknown flags are a UsageError. */
export function parseFlags(argv: string[], flags: FlagSpec[]): Record<string, string | undefined> {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const f of flags) options[f.name] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv.map((a) => (a.match(/^--[\w-]+$/) && flags.some((f) => `--${f.name}` === a && f.type === 'boolean') ? `${a}=true` : a)), options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const out: Record<string, string | undefined> = {};
  if (values.help) out.help = 'true';
  for (const f of flags) {
    const v = values[f.name];
    out[f.name] = typeof v === 'string' ? v : (process.env[f.env] ?? f.default);
    if (f.type === 'boolean' && out[f.name] !== undefined && !['true', 'false'].includes(out[f.name]!)) {
      throw new UsageError(`--${f.name} must be true or false`);
    }
  }
  return out;
}

export function csv(s: string | undefined): string[] {
  return (s ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '');
}

const SIZE_UNITS: Record<string, number> = { '': 1024 * 1024, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };

/** A size: a whole number of megabytes (kube-apiserver's --audit-log-maxsize), or with a Ki, Mi or Gi suffix; at most 1Ti. */
export function sizeFlag(name: string, s: string | undefined): number {
  const m = /^(\d{1,7})(Ki|Mi|Gi)?$/.exec(s ?? '');
  const bytes = m ? Number(m[1]) * SIZE_UNITS[m[2] ?? '']! : NaN;
  if (!(bytes <= 1024 ** 4)) throw new UsageError(`--${name} must be a whole number of megabytes, or a size such as 512Ki, 100Mi or 1Gi (at most 1Ti)`);
  return bytes;
}

export function intFlag(name: string, s: string | undefined, min: number, max: number): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}
