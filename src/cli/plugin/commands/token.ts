/**
 * `kubectl apikey token NAME`: an access token for a key, fetched with the
 * key's own credentials (client credentials grant), so that
 * `curl -H "Authorization: Bearer $(kubectl apikey token ci)"` works.
 *
 * `kubectl apikey token --deployment NAME`: a short-lived token for a
 * Deployment with the user's own Kubernetes identity (RFC 8693 token
 * exchange); the token server checks it with a TokenReview and a
 * SubjectAccessReview, so only a bearer token can be exchanged.
 */
import { stringFlag, type CommandDef, type Invocation } from '../command.ts';
import { PluginError, PluginUsageError } from '../../../client/errors.ts';
import { formatStructured } from '../output.ts';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../../api/index.ts';
import {
  PORT_FORWARD_HINT, requestToken, requireSafeTransport, TOKEN_URL_ENV, tokenEndpoint, type TokenResponse,
} from '../../../client/oauth.ts';
import { dpopKey, type DpopKey } from '../../../client/dpop-key.ts';
import { readyOf } from '../resources.ts';
import type { Session } from '../session.ts';
import { data, text } from '../terminal.ts';

/** `--scope deploy,read` and `--scope "deploy read"` both become OAuth's space-separated scope. */
function scopeOf(inv: Invocation): string | undefined {
  const s = stringFlag(inv.values, 'scope');
  return s === undefined ? undefined : s.split(/[\s,]+/).filter((x) => x !== '').join(' ');
}

function print(inv: Invocation, res: TokenResponse): number {
  if (inv.output === 'table') text(`${res.access_token}\n`);
  else data(formatStructured(res, inv.output));
  return 0;
}

const EXPLICIT_URL_HINT = 'check the URL, and that the port-forward (if any) is still running';

/** The token endpoint the user named (--token-url, else the environment variable) and where it came from; undefined if neither. */
function explicitTokenUrl(inv: Invocation): { url: string; from: string } | undefined {
  const flagUrl = stringFlag(inv.values, 'token-url');
  if (flagUrl !== undefined) return { url: tokenEndpoint(flagUrl, '--token-url'), from: '--token-url' };
  const envUrl = process.env[TOKEN_URL_ENV] || undefined;
  return envUrl === undefined ? undefined : { url: tokenEndpoint(envUrl, TOKEN_URL_ENV), from: TOKEN_URL_ENV };
}

async function keyToken(inv: Invocation, name: string): Promise<number> {
  const s = await inv.session();
  const ak = await s.getApiKey(name);
  const ready = readyOf(ak);
  if (ready?.status !== 'True') {
    throw new PluginError(`ApiKey "${name}" is not Ready${ready ? ` (${ready.reason}: ${ready.message})` : ''}; it issues no tokens`);
  }
  const creds = await s.readCredentials(ak);
  if (!creds) {
    throw new PluginError(`the Secret of ApiKey "${name}" does not hold its current secret yet (a rotation in progress?); try again in a moment`);
  }
  const explicit = explicitTokenUrl(inv);
  const res = await requestToken({
    url: explicit?.url ?? tokenEndpoint(creds.tokenUrl, `TOKEN_URL in Secret "${creds.secretName}"`),
    params: { grant_type: 'client_credentials', audience: stringFlag(inv.values, 'audience') ?? creds.audience, scope: scopeOf(inv) },
    basic: { id: creds.keyId, secret: creds.secret },
    dpop: dpopOf(inv),
    unreachableHint: explicit === undefined
      ? `that is TOKEN_URL from Secret "${creds.secretName}", the address inside the cluster, usually unreachable from outside; ${PORT_FORWARD_HINT}`
      : EXPLICIT_URL_HINT,
  });
  return print(inv, res);
}

/**
 * The user's bearer token, as the plugin's own requests send it (static
 * token, token file, OIDC auth provider, exec plugin). A client certificate
 * is refused with the reason and the alternatives.
 */
async function userBearerToken(s: Session): Promise<string> {
  let headers: Record<string, string>;
  try {
    headers = await s.client.authHeaders();
  } catch (err) {
    throw new PluginError(`cannot get credentials for context "${s.cluster.context}": ${(err as Error).message}`);
  }
  const auth = headers.Authorization ?? headers.authorization;
  if (auth?.startsWith('Bearer ') && auth.length > 7) return auth.slice(7);
  const user = s.kc.getCurrentUser();
  const how = user?.certData || user?.certFile ? 'a client certificate'
    : user?.username ? 'a user name and password' : 'no credentials';
  throw new PluginError(
    `context "${s.cluster.context}" authenticates with ${how}, not a bearer token, so it cannot be exchanged: ` +
    'the token server checks the identity with a TokenReview, which verifies bearer tokens only (a client certificate is ' +
    'verified by the API server during the TLS handshake and cannot be presented to anyone else). Instead, use an API key ' +
    '(kubectl apikey create NAME --deployment D, then kubectl apikey token NAME), or a context whose user has a bearer token: ' +
    'OIDC, an exec plugin, or a ServiceAccount token from kubectl create token SERVICEACCOUNT');
}

async function deploymentToken(inv: Invocation, deployment: string): Promise<number> {
  const endpoint = explicitTokenUrl(inv);
  if (endpoint === undefined) {
    throw new PluginUsageError(
      `token --deployment needs the token endpoint: pass --token-url URL or set ${TOKEN_URL_ENV} ` +
      '(e.g. http://localhost:8080/oauth/token after kubectl -n apikey-operator port-forward svc/apikey-operator-token 8080:8080)');
  }
  // Before the credential is even fetched (an exec plugin may prompt): it must not travel in the clear.
  requireSafeTransport(endpoint.url, endpoint.from);
  const { url } = endpoint;
  const s = await inv.session();
  const subjectToken = await userBearerToken(s);
  const res = await requestToken({
    url,
    params: {
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      deployment: `${s.namespace}/${deployment}`,
      audience: stringFlag(inv.values, 'audience'),
      scope: scopeOf(inv),
    },
    unreachableHint: EXPLICIT_URL_HINT,
    dpop: dpopOf(inv),
  });
  return print(inv, res);
}

/** --dpop FILE: the key the token is bound to (made in FILE if it does not exist). */
function dpopOf(inv: Invocation): DpopKey | undefined {
  const file = stringFlag(inv.values, 'dpop');
  return file === undefined ? undefined : dpopKey(file);
}

async function token(inv: Invocation): Promise<number> {
  const deployment = stringFlag(inv.values, 'deployment');
  const name = inv.positionals[0];
  if (deployment !== undefined && name !== undefined) {
    throw new PluginUsageError('give an ApiKey NAME or --deployment NAME, not both');
  }
  if (deployment !== undefined) return deploymentToken(inv, deployment);
  if (name === undefined) throw new PluginUsageError('token needs an ApiKey NAME, or --deployment NAME for a token with your own identity');
  return keyToken(inv, name);
}

export const tokenCommand: CommandDef = {
  name: 'token',
  summary: "print an access token for an API key, or for a Deployment with your own identity",
  description: [
    'Print an access token (a JWT) on stdout, and nothing else, so that $(kubectl apikey token ci) works.',
    '',
    'token NAME: uses the credentials in the key\'s Secret and its TOKEN_URL. That URL is the address inside',
    'the cluster; from outside, port-forward the token Service and pass --token-url (or set',
    `${TOKEN_URL_ENV}).`,
    '',
    'token --deployment NAME: a short-lived token for that Deployment with your own Kubernetes identity',
    '(OAuth 2.0 token exchange, RFC 8693). Your context must authenticate with a bearer token (OIDC, an',
    'exec plugin, a ServiceAccount token), and you need create on deployments/token in apikeys.dev (the',
    'ClusterRole apikey-operator-deployment-token-requester). --token-url (or the variable) is required, and',
    'must be https:// or on this machine (http://localhost after a port-forward): your Kubernetes credential',
    'is sent to it, and is never sent over plain HTTP to another host.',
    '',
    '--dpop FILE: a DPoP-bound token (token_type DPoP, RFC 9449) for the private key in FILE, which is made',
    'there (P-256, mode 0600) if it does not exist and never leaves this machine. Every request made with the',
    'token needs a DPoP proof signed with that key: the token alone is useless to whoever copies it.',
  ].join('\n'),
  usage: 'token (NAME | --deployment NAME) [flags]',
  positionals: { min: 0, max: 1, names: ['NAME'] },
  output: ['json', 'yaml', 'jsonpath'],
  flags: [
    { name: 'deployment', type: 'string', value: 'NAME', help: 'a token for this Deployment with your own identity, instead of a key\'s' },
    { name: 'audience', type: 'string', value: 'AUD', help: 'the audience (default: the key\'s first one)' },
    { name: 'scope', type: 'string', value: 'SCOPE', help: 'narrow the permissions, e.g. read or "deploy read"' },
    { name: 'dpop', type: 'string', value: 'FILE', help: 'a DPoP-bound token (RFC 9449) for the private key in FILE (a P-256 JWK, made there with mode 0600 if missing; it never leaves this machine)' },
    { name: 'token-url', type: 'string', value: 'URL', help: `the token endpoint (default: TOKEN_URL from the key's Secret) [${TOKEN_URL_ENV}]` },
  ],
  examples: [
    '# From this machine: reach the token endpoint, then deploy with a key\'s token',
    'kubectl -n apikey-operator port-forward svc/apikey-operator-token 8080:8080 &',
    `export ${TOKEN_URL_ENV}=http://localhost:8080/oauth/token`,
    'curl -H "Authorization: Bearer $(kubectl apikey token ci-deployer)" https://airflow-prod.example.com/api/v1/dags',
    '',
    '# The whole token response, with a narrower scope',
    'kubectl apikey token ci-deployer --scope read -o json',
    '',
    '# A DPoP-bound token: useless without proofs of the key in ~/.config/apikey/dpop.jwk',
    'kubectl apikey token ci-deployer --dpop ~/.config/apikey/dpop.jwk -o json',
    '',
    '# A one-off token with your own identity',
    'kubectl apikey token --deployment airflow-prod --scope read',
  ],
  run: token,
};
