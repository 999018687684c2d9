/**
 * `kubectl apikey create NAME --deployment D`: the seed's "create an API key"
 * flow. It checks the Deployment first (the most common mistake), creates the
 * ApiKey, waits for the operator to make it Ready, and prints the key id and
 * secret once: nothing shows the secret again (rotate --show-secret makes a
 * new one).
 */
import type { ApiKey, ApiKeySpec, Permission } from '../../../api/index.ts';
import { API_VERSION, isPermission, PERMISSIONS, reportedSecretNameOf } from '../../../api/index.ts';
import { durationFlag, stringFlag, type CommandDef, type Invocation } from '../command.ts';
import { PluginError, PluginUsageError } from '../../../client/errors.ts';
import { formatStructured } from '../output.ts';
import { allowedNetworksOf } from './set-networks.ts';
import { ONLY_TIME_WARNING, printCredentials } from '../print-credentials.ts';
import { pollUntil, startProgress } from '../progress.ts';
import { APIKEY_KIND_NAME, APIKEY_RESOURCE, readyOf, type StoredCredentials } from '../resources.ts';
import type { Session } from '../session.ts';
import { data, text, textErr } from '../terminal.ts';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
/** Ready=False reasons that waiting does not fix. */
const TERMINAL = new Set(['SecretConflict', 'Expired']);

function specFrom(inv: Invocation): ApiKeySpec {
  const v = inv.values;
  const deployment = stringFlag(v, 'deployment');
  if (!deployment) throw new PluginUsageError('create needs --deployment NAME: the Deployment (apikeys.dev) the key grants access to');
  const spec: ApiKeySpec = { deploymentRef: { name: deployment } };
  const description = stringFlag(v, 'description');
  if (description !== undefined) spec.description = description;
  const permissions = stringFlag(v, 'permissions');
  if (permissions !== undefined) {
    const list = [...new Set(permissions.split(',').map((p) => p.trim()).filter((p) => p !== ''))];
    const unknown = list.filter((p) => !isPermission(p));
    if (list.length === 0 || unknown.length > 0) {
      throw new PluginUsageError(`--permissions takes a comma-separated list of ${PERMISSIONS.join(', ')}${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}`);
    }
    spec.permissions = list as Permission[];
  }
  const secretName = stringFlag(v, 'secret-name');
  if (secretName !== undefined) spec.secretName = secretName;
  const expiresAt = stringFlag(v, 'expires-at');
  const expiresIn = durationFlag(v, 'expires-in', 60_000);
  if (expiresAt !== undefined && expiresIn) throw new PluginUsageError('give --expires-at or --expires-in, not both');
  if (expiresAt !== undefined) {
    if (!RFC3339.test(expiresAt) || Number.isNaN(Date.parse(expiresAt))) {
      throw new PluginUsageError(`--expires-at must be an RFC 3339 time such as 2030-01-31T00:00:00Z (got "${expiresAt}")`);
    }
    if (Date.parse(expiresAt) <= Date.now()) throw new PluginUsageError(`--expires-at ${expiresAt} is in the past`);
    spec.expiresAt = expiresAt;
  }
  if (expiresIn) spec.expiresAt = new Date(Date.now() + expiresIn.ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const every = durationFlag(v, 'rotate-every', 60_000);
  const grace = durationFlag(v, 'grace-period');
  if (every || grace) spec.rotation = { ...(every ? { every: every.text } : {}), ...(grace ? { gracePeriod: grace.text } : {}) };
  const ttl = durationFlag(v, 'token-ttl', 1000);
  if (ttl) spec.tokenTTL = ttl.text;
  const networks = stringFlag(v, 'allowed-networks');
  if (networks !== undefined) spec.allowedNetworks = allowedNetworksOf([networks], '--allowed-networks');
  return spec;
}

/**
 * --dry-run=client: the ApiKey manifest, for GitOps, without asking the
 * cluster anything (as kubectl create --dry-run=client). Its namespace is
 * written only when -n names one, so the manifest can go anywhere.
 */
function printManifest(inv: Invocation, name: string, spec: ApiKeySpec): number {
  const namespace = stringFlag(inv.values, 'namespace');
  const manifest: ApiKey = { apiVersion: API_VERSION, kind: 'ApiKey', metadata: { name, ...(namespace ? { namespace } : {}) }, spec };
  if (inv.output === 'table') text(`${APIKEY_KIND_NAME}/${name} created (dry run)\n`);
  else if (inv.output === 'name') data(`${APIKEY_KIND_NAME}/${name}\n`);
  else data(formatStructured(manifest, inv.output));
  return 0;
}

/** --dry-run: none (the default) creates; client prints the manifest. */
function isDryRun(inv: Invocation): boolean {
  const mode = stringFlag(inv.values, 'dry-run') ?? 'none';
  if (mode !== 'none' && mode !== 'client') {
    throw new PluginUsageError(`--dry-run must be client or none (got "${mode}")`);
  }
  if (mode === 'none' && inv.output === 'name') throw new PluginUsageError('-o name goes with --dry-run=client; a created key prints its id and secret');
  return mode === 'client';
}

async function create(inv: Invocation): Promise<number> {
  const name = inv.positionals[0]!;
  const spec = specFrom(inv);
  if (isDryRun(inv)) return printManifest(inv, name, spec);
  const timeout = durationFlag(inv.values, 'timeout', 1000)?.ms ?? 60_000;
  const s = await inv.session();
  const dep = await s.getDeployment(spec.deploymentRef.name);

  await s.call({ verb: 'create', resource: APIKEY_RESOURCE, namespace: s.namespace, name }, async (c) => {
    try {
      await c.create<ApiKey>(s.apiKeyPath(), { apiVersion: API_VERSION, kind: 'ApiKey', metadata: { name }, spec });
    } catch (err) {
      if ((err as { status?: number }).status === 409) {
        throw new PluginError(
          `ApiKey "${name}" already exists in namespace "${s.namespace}"; its secret was shown when it was created. ` +
          `For a new secret: kubectl apikey rotate ${name} --show-secret -n ${s.namespace}`);
      }
      throw err;
    }
  });

  const creds = await waitForCredentials(s, name, timeout);
  if (inv.output === 'table') {
    text(`ApiKey "${name}" created in namespace "${s.namespace}" for Deployment "${dep.metadata.name}".\n\n`);
    printCredentials(s, name, creds);
  } else {
    textErr(`${ONLY_TIME_WARNING}\n`);
    data(formatStructured(creds, inv.output));
  }
  return 0;
}

/** Waits for Ready and for the Secret to hold the secret the status hashes, with progress on stderr. */
async function waitForCredentials(s: Session, name: string, timeoutMs: number): Promise<StoredCredentials> {
  const progress = startProgress(`waiting for the operator to make ApiKey "${name}" Ready`);
  let last: ApiKey | undefined;
  let creds: StoredCredentials | undefined;
  try {
    creds = await pollUntil(timeoutMs, async () => {
      last = await s.getApiKey(name);
      const ready = readyOf(last);
      if (ready?.status === 'False' && TERMINAL.has(ready.reason)) throw notReady(s, name, ready);
      if (ready?.status !== 'True' || !last.status?.secretHash) return undefined;
      progress.update(`ApiKey "${name}" is Ready; reading Secret "${reportedSecretNameOf(last)}"`);
      return s.readCredentials(last);
    });
  } finally {
    progress.done();
  }
  if (creds) return creds;
  const ready = last && readyOf(last);
  if (ready) throw notReady(s, name, ready, timeoutMs);
  throw new PluginError(
    `ApiKey "${name}" was created but did not become Ready within ${timeoutMs / 1000}s: no operator has acted on it. ` +
    'Is apikey-operator running, and does it watch this namespace? (kubectl -n apikey-operator get pods)');
}

function notReady(s: Session, name: string, ready: { status: string; reason: string; message: string }, waitedMs?: number): PluginError {
  const waited = waitedMs ? ` within ${waitedMs / 1000}s` : '';
  return new PluginError(
    `ApiKey "${name}" was created but is not Ready${waited}: ${ready.reason}: ${ready.message}. ` +
    `Fix the cause, or remove it with: kubectl apikey delete ${name} -n ${s.namespace}`);
}

export const createCommand: CommandDef = {
  name: 'create',
  summary: 'create an API key for a Deployment and print its id and secret once',
  description: [
    'Create an API key for a Deployment (apikeys.dev), wait until the operator has written its',
    'credentials Secret, and print the key id and secret. This is the only time the secret is',
    'shown; it also lives in the Secret, for Pods and Jobs to use with envFrom: secretRef.',
    'With --dry-run=client it prints the ApiKey instead (-o yaml for GitOps) and asks the cluster nothing.',
  ].join('\n'),
  usage: 'create NAME --deployment DEPLOYMENT [flags]',
  positionals: { min: 1, max: 1, names: ['NAME'] },
  output: ['json', 'yaml', 'name', 'jsonpath'],
  flags: [
    { name: 'dry-run', type: 'string', value: 'client', help: 'client: print the ApiKey (with -o yaml|json) instead of creating it' },
    { name: 'deployment', type: 'string', value: 'NAME', help: 'the Deployment (apikeys.dev) the key grants access to (required)' },
    { name: 'description', type: 'string', value: 'TEXT', help: 'free text for humans' },
    { name: 'permissions', type: 'string', value: 'LIST', help: `comma-separated: ${PERMISSIONS.join(', ')} (default deploy)` },
    { name: 'secret-name', type: 'string', value: 'NAME', help: 'the Secret the credentials go to (default: the key\'s name)' },
    { name: 'expires-at', type: 'string', value: 'TIME', help: 'RFC 3339 time after which the key issues no tokens' },
    { name: 'expires-in', type: 'string', value: 'DURATION', help: 'the same, as a duration from now, e.g. 720h' },
    { name: 'rotate-every', type: 'string', value: 'DURATION', help: 'scheduled rotation, e.g. 2160h' },
    { name: 'grace-period', type: 'string', value: 'DURATION', help: 'how long the previous secret works after a rotation (default 1h)' },
    { name: 'token-ttl', type: 'string', value: 'DURATION', help: 'lifetime of its tokens (default 24h, at most the Deployment\'s maxTokenTTL)' },
    { name: 'allowed-networks', type: 'string', value: 'LIST', help: 'comma-separated CIDRs the key may be used from, e.g. 10.20.0.0/16,2001:db8::/48 (default: anywhere)' },
    { name: 'timeout', type: 'string', value: 'DURATION', help: 'how long to wait for the key to become Ready (default 60s)' },
  ],
  examples: [
    '# A key for CI to deploy to the Deployment airflow-prod',
    'kubectl apikey create ci-deployer --deployment airflow-prod --description "GitHub Actions deploy job"',
    '',
    '# A read-only key that expires in 30 days and rotates weekly, as JSON for a script',
    'kubectl apikey create dashboard --deployment airflow-prod --permissions read --expires-in 720h \\',
    '    --rotate-every 168h --grace-period 24h -o json',
    '',
    '# A key that works only from the CI runners\' network',
    'kubectl apikey create ci-deployer --deployment airflow-prod --allowed-networks 10.20.0.0/16',
    '',
    '# The ApiKey manifest for a GitOps repository, without creating it',
    'kubectl apikey create ci-deployer --deployment airflow-prod --dry-run=client -o yaml > ci-deployer.yaml',
  ],
  run: create,
};
