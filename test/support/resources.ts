/** Typed helpers for the apikeys.dev resources and their Secrets, as the admin. */
import { randomBytes } from 'node:crypto';
import type { ApiKey, ApiKeySpec, Deployment, DeploymentSpec, FederatedCredential, FederatedCredentialSpec } from '../../src/api/index.ts';
import { API_VERSION, DEPLOYMENTS, GROUP, readCredential, VERSION, SECRET_KEYS, type Credentials, type SecretObject } from '../../src/api/index.ts';
import { audienceClaimName } from '../../src/api/claims.ts';
import { isNotFound, KubeClient, paths } from '../../src/kube/client.ts';
import { adminKubeConfig } from './cluster.ts';
import { recordSecret } from './processes.ts';
import { waitFor } from './wait.ts';

let admin: KubeClient | undefined;
export function adminClient(): KubeClient {
  admin ??= new KubeClient(adminKubeConfig());
  return admin;
}

export const apiKeyPath = (ns: string, name = '') =>
  name ? paths.object(GROUP, VERSION, 'apikeys', ns, name) : paths.collection(GROUP, VERSION, 'apikeys', ns);
export const deploymentPath = (ns: string, name = '') =>
  name ? paths.object(GROUP, VERSION, 'deployments', ns, name) : paths.collection(GROUP, VERSION, 'deployments', ns);
export const federatedCredentialPath = (ns: string, name = '') =>
  name ? paths.object(GROUP, VERSION, 'federatedcredentials', ns, name) : paths.collection(GROUP, VERSION, 'federatedcredentials', ns);
export const secretPath = (ns: string, name = '') =>
  name ? paths.object('', 'v1', 'secrets', ns, name) : paths.collection('', 'v1', 'secrets', ns);

/**
 * A custom audience no other Deployment in the shared control plane claims:
 * a custom audience belongs to the first Deployment that lists it, across
 * namespaces, so tests never share one by accident.
 */
export function uniqueAudience(label: string): string {
  return `https://${label}-${randomBytes(4).toString('hex')}.example.test`;
}

/**
 * Waits until no Deployment in the cluster lists `audience`: the examples'
 * fixed audience is claimed by the first Deployment that lists it, and an
 * earlier test's namespace may still be on its way out.
 */
export async function waitUntilAudienceFree(audience: string): Promise<void> {
  await waitFor(`no Deployment claims ${audience}`, async () => {
    const all = await adminClient().list<Deployment>(paths.collection(GROUP, VERSION, DEPLOYMENTS));
    return !all.items.some((d) => d.spec.audiences?.includes(audience));
  }, 60_000, 200);
}

export function createDeployment(ns: string, name: string, spec: DeploymentSpec = {}): Promise<Deployment> {
  return adminClient().create<Deployment>(deploymentPath(ns), {
    apiVersion: API_VERSION, kind: 'Deployment', metadata: { name }, spec,
  });
}

/**
 * Claims the custom audiences of `dep` the way the controller does (an AudienceClaim each in the
 * operator's namespace, src/api/claims.ts), for tests that run the token server without a controller.
 */
export async function claimAudiences(operatorNamespace: string, dep: Deployment): Promise<void> {
  for (const audience of dep.spec.audiences ?? []) {
    await adminClient().create(`/apis/${API_VERSION}/namespaces/${operatorNamespace}/audienceclaims`, {
      apiVersion: API_VERSION, kind: 'AudienceClaim', metadata: { name: audienceClaimName(audience) },
      spec: { audience, holder: { namespace: dep.metadata.namespace, name: dep.metadata.name, uid: dep.metadata.uid } },
    });
  }
}

export function createApiKey(ns: string, name: string, spec: ApiKeySpec, annotations?: Record<string, string>): Promise<ApiKey> {
  return adminClient().create<ApiKey>(apiKeyPath(ns), {
    apiVersion: API_VERSION, kind: 'ApiKey', metadata: { name, annotations }, spec,
  });
}

export function createFederatedCredential(ns: string, name: string, spec: FederatedCredentialSpec): Promise<FederatedCredential> {
  return adminClient().create<FederatedCredential>(federatedCredentialPath(ns), {
    apiVersion: API_VERSION, kind: 'FederatedCredential', metadata: { name }, spec,
  });
}

export async function getOrUndefined<T>(path: string): Promise<T | undefined> {
  try {
    return await adminClient().get<T>(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export const getApiKey = (ns: string, name: string) => getOrUndefined<ApiKey>(apiKeyPath(ns, name));
export const getSecret = (ns: string, name: string) => getOrUndefined<SecretObject>(secretPath(ns, name));
export const getDeployment = (ns: string, name: string) => getOrUndefined<Deployment>(deploymentPath(ns, name));
export const getFederatedCredential = (ns: string, name: string) => getOrUndefined<FederatedCredential>(federatedCredentialPath(ns, name));

export function readyOf(ak: ApiKey | Deployment | FederatedCredential | undefined): { status?: string; reason?: string; message?: string } | undefined {
  return ak?.status?.conditions?.find((c) => c.type === 'Ready');
}

export function waitForReady(ns: string, name: string, timeoutMs = 30_000): Promise<ApiKey> {
  return waitFor(`ApiKey ${ns}/${name} Ready`, async () => {
    const ak = await getApiKey(ns, name);
    return readyOf(ak)?.status === 'True' && ak?.status?.secretHash ? ak : undefined;
  }, timeoutMs);
}

export type { Credentials };

/** Reads a credentials Secret's four keys (and records the secret for the log scan). */
export function credentialsOf(s: SecretObject): Credentials {
  const get = (k: string) => readCredential(s, k) ?? '';
  const c = { keyId: get(SECRET_KEYS.id), secret: get(SECRET_KEYS.secret), tokenUrl: get(SECRET_KEYS.tokenUrl), audience: get(SECRET_KEYS.audience) };
  if (c.secret) recordSecret(c.secret);
  return c;
}

export async function eventsFor(ns: string, name: string): Promise<{ reason: string; type: string; note: string; reportingInstance: string }[]> {
  const list = await adminClient().list<{ reason: string; type: string; note: string; reportingInstance: string; regarding: { name: string } }>(
    `/apis/events.k8s.io/v1/namespaces/${ns}/events`,
  );
  return list.items.filter((e) => e.regarding.name === name);
}
