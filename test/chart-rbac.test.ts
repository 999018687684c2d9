/**
 * The chart's ServiceAccounts have the rights their programs need and no more, asked of the real
 * apiserver's RBAC (`kubectl auth can-i --as=system:serviceaccount:...`, which the admin may
 * impersonate), and proven with a real ServiceAccount token where it matters most: the token server
 * reads the signing-keys Secret and no other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR } from '../scripts/render-manifests.ts';
import { createNamespace, kubectl, serviceAccountKubeconfig, uniqueName, type TestNamespace } from './support/cluster.ts';
import { WITHOUT_CRDS, helm } from './support/helm.ts';

const SIGNING_KEYS = 'apikey-operator-signing-keys';
const LEASE = 'apikey-operator-controller';

interface Release { name: string; ns: TestNamespace }

const tmp = mkdtempSync(join(tmpdir(), 'chart-rbac-'));
const releases = {} as Record<'deployment' | 'sidecar' | 'watching', Release>;
let other: TestNamespace;
let watched: TestNamespace;

async function install(mode: keyof typeof releases, values: object): Promise<void> {
  const ns = await createNamespace(`rbac-${mode}`);
  const name = uniqueName('apikey-operator');
  releases[mode] = { name, ns };
  const r = await helm(['install', name, CHART_DIR, '--namespace', ns.name], { ...WITHOUT_CRDS, ...values });
  if (r.code !== 0) throw new Error(`helm install (${mode}) failed: ${r.stderr}`);
}

beforeAll(async () => {
  other = await createNamespace('rbac-other');
  watched = await createNamespace('rbac-watched');
  await install('deployment', { tokenServer: { mode: 'deployment' } });
  await install('sidecar', {});
  await install('watching', { tokenServer: { mode: 'deployment' }, watchNamespaces: [watched.name] });
});

afterAll(async () => {
  for (const { name, ns } of Object.values(releases)) {
    await helm(['uninstall', name, '--namespace', ns.name, '--ignore-not-found']);
    await ns.cleanup();
  }
  await other?.cleanup();
  await watched?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

/** Where a check is asked: the release's namespace, an unwatched one, a watched one, all, or cluster scope. */
type Where = 'operator' | 'other' | 'watched' | 'all' | 'cluster';
type Row = [sentence: string, request: string, where: Where, allowed: boolean];

async function canI(release: Release, serviceAccount: string, request: string, where: Where): Promise<boolean> {
  const scope = {
    operator: ['-n', release.ns.name], other: ['-n', other.name], watched: ['-n', watched.name],
    all: ['--all-namespaces'], cluster: [],
  }[where];
  const r = await kubectl([
    'auth', 'can-i', ...request.split(' '), ...scope, `--as=system:serviceaccount:${release.ns.name}:${release.name}-${serviceAccount}`,
  ]);
  const answer = r.stdout.trim();
  if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl auth can-i ${request}: ${r.stderr}`);
  return answer === 'yes';
}

const TOKEN_SERVER: Row[] = [
  ['reads the signing-keys Secret', `get secrets/${SIGNING_KEYS}`, 'operator', true],
  ['lists and watches the signing-keys Secret by name', `watch secrets/${SIGNING_KEYS}`, 'operator', true],
  ['cannot read another Secret in its namespace', 'get secrets/ci-credentials', 'operator', false],
  ['cannot list the Secrets of its namespace', 'list secrets', 'operator', false],
  ['cannot read a Secret of that name in another namespace', `get secrets/${SIGNING_KEYS}`, 'other', false],
  ['cannot read credentials Secrets in another namespace', 'get secrets/ci-credentials', 'other', false],
  ['cannot list Secrets cluster-wide', 'list secrets', 'all', false],
  ['cannot change the signing keys', `update secrets/${SIGNING_KEYS}`, 'operator', false],
  ['cannot create Secrets', 'create secrets', 'operator', false],
  ['cannot read the seal-key Secret', 'get secrets/apikey-operator-seal-key', 'operator', false],
  ['lists ApiKeys in every namespace', 'list apikeys.apikeys.dev', 'all', true],
  ['watches Deployments in every namespace', 'watch deployments.apikeys.dev', 'all', true],
  ['reads an ApiKey in another namespace', 'get apikeys.apikeys.dev', 'other', true],
  ['patches ApiKey status (lastUsedAt)', 'patch apikeys.apikeys.dev --subresource=status', 'other', true],
  ['cannot update ApiKey status', 'update apikeys.apikeys.dev --subresource=status', 'other', false],
  ['cannot create ApiKeys', 'create apikeys.apikeys.dev', 'other', false],
  ['cannot update ApiKeys', 'update apikeys.apikeys.dev', 'other', false],
  ['patches ApiKeys (the compromised mark alone: the token-server-writes admission policy refuses the rest)', 'patch apikeys.apikeys.dev', 'other', true],
  ['cannot delete ApiKeys', 'delete apikeys.apikeys.dev', 'other', false],
  ['cannot create Deployments', 'create deployments.apikeys.dev', 'other', false],
  ['cannot delete Deployments', 'delete deployments.apikeys.dev', 'other', false],
  ['cannot write Deployment status', 'patch deployments.apikeys.dev --subresource=status', 'other', false],
  ['creates TokenReviews', 'create tokenreviews.authentication.k8s.io', 'cluster', true],
  ['creates SubjectAccessReviews', 'create subjectaccessreviews.authorization.k8s.io', 'cluster', true],
  ['cannot take the leader-election Lease', `update leases.coordination.k8s.io/${LEASE}`, 'operator', false],
  ['cannot record events', 'create events.events.k8s.io', 'other', false],
  ['cannot read Pods', 'get pods', 'operator', false],
  ['cannot list ConfigMaps', 'list configmaps', 'all', false],
  ['watches the AudienceClaims of its namespace', 'watch audienceclaims.apikeys.dev', 'operator', true],
  ['cannot create AudienceClaims', 'create audienceclaims.apikeys.dev', 'operator', false],
  ['cannot delete AudienceClaims', 'delete audienceclaims.apikeys.dev', 'operator', false],
  ['cannot list AudienceClaims elsewhere', 'list audienceclaims.apikeys.dev', 'other', false],
];

const CONTROLLER: Row[] = [
  ['creates credentials Secrets in any namespace', 'create secrets', 'other', true],
  ['applies credentials Secrets (server-side apply is a patch)', 'patch secrets', 'other', true],
  ['cannot update Secrets (it only applies)', 'update secrets', 'other', false],
  ['cannot delete Secrets (the garbage collector does)', 'delete secrets', 'other', false],
  ['watches Secrets cluster-wide', 'watch secrets', 'all', true],
  ['patches ApiKeys (their ownerReference)', 'patch apikeys.apikeys.dev', 'other', true],
  ['cannot update ApiKeys', 'update apikeys.apikeys.dev', 'other', false],
  ['updates ApiKey finalizers (blockOwnerDeletion)', 'update apikeys.apikeys.dev --subresource=finalizers', 'other', true],
  ['writes ApiKey status', 'patch apikeys.apikeys.dev --subresource=status', 'other', true],
  ['cannot update ApiKey status (it only applies)', 'update apikeys.apikeys.dev --subresource=status', 'other', false],
  ['writes Deployment status', 'patch deployments.apikeys.dev --subresource=status', 'other', true],
  ['cannot update Deployment status (it only applies)', 'update deployments.apikeys.dev --subresource=status', 'other', false],
  ['cannot create ApiKeys', 'create apikeys.apikeys.dev', 'other', false],
  ['cannot delete ApiKeys', 'delete apikeys.apikeys.dev', 'other', false],
  ['cannot change Deployments', 'update deployments.apikeys.dev', 'other', false],
  ['cannot patch Deployments', 'patch deployments.apikeys.dev', 'other', false],
  ['records events', 'create events.events.k8s.io', 'other', true],
  ['cannot change events', 'patch events.events.k8s.io', 'other', false],
  ['creates the leader-election Lease', 'create leases.coordination.k8s.io', 'operator', true],
  ['renews the leader-election Lease', `update leases.coordination.k8s.io/${LEASE}`, 'operator', true],
  ['cannot list Leases', 'list leases.coordination.k8s.io', 'operator', false],
  ['cannot update another Lease in its namespace', 'update leases.coordination.k8s.io/kube-scheduler', 'operator', false],
  ['cannot delete the Lease', `delete leases.coordination.k8s.io/${LEASE}`, 'operator', false],
  ['cannot touch a Lease in another namespace', `update leases.coordination.k8s.io/${LEASE}`, 'other', false],
  ['cannot create Leases in another namespace', 'create leases.coordination.k8s.io', 'other', false],
  ['cannot delete namespaces', 'delete namespaces', 'cluster', false],
  ['cannot read ConfigMaps', 'get configmaps', 'other', false],
  ['cannot create Pods', 'create pods', 'operator', false],
  ['cannot create TokenReviews (the token server does)', 'create tokenreviews.authentication.k8s.io', 'cluster', false],
  ['cannot bind ClusterRoles', 'bind clusterroles.rbac.authorization.k8s.io', 'cluster', false],
  ['cannot change RBAC', 'update clusterroles.rbac.authorization.k8s.io', 'cluster', false],
  ['claims audiences in its namespace', 'create audienceclaims.apikeys.dev', 'operator', true],
  ['releases audience claims in its namespace', 'delete audienceclaims.apikeys.dev', 'operator', true],
  ['cannot change an audience claim (claims are immutable)', 'update audienceclaims.apikeys.dev', 'operator', false],
  ['cannot claim audiences in another namespace', 'create audienceclaims.apikeys.dev', 'other', false],
];

/**
 * In sidecar mode each container has its own identity: the controller's ServiceAccount holds only the
 * controller's rights, plus a token of the token server's ServiceAccount (and no other) for its sidecar.
 */
const SIDECAR_CONTROLLER: Row[] = [
  ['does not create TokenReviews (its sidecar does, as itself)', 'create tokenreviews.authentication.k8s.io', 'cluster', false],
  ['patches ApiKey status', 'patch apikeys.apikeys.dev --subresource=status', 'other', true],
  ['reads the signing-keys Secret', `get secrets/${SIGNING_KEYS}`, 'operator', true],
  ['creates credentials Secrets', 'create secrets', 'other', true],
  ['renews the leader-election Lease', `update leases.coordination.k8s.io/${LEASE}`, 'operator', true],
  ['cannot delete namespaces', 'delete namespaces', 'cluster', false],
  ['cannot create Deployments', 'create deployments.apikeys.dev', 'other', false],
];

/** The token server's own ServiceAccount in sidecar mode: the same rights as in its own Deployment. */
const SIDECAR_TOKEN_SERVER: Row[] = [
  ['creates TokenReviews', 'create tokenreviews.authentication.k8s.io', 'cluster', true],
  ['creates SubjectAccessReviews', 'create subjectaccessreviews.authorization.k8s.io', 'cluster', true],
  ['patches ApiKey status', 'patch apikeys.apikeys.dev --subresource=status', 'other', true],
  ['reads the signing-keys Secret', `get secrets/${SIGNING_KEYS}`, 'operator', true],
  ['cannot read Secrets', 'get secrets', 'other', false],
  ['cannot read Secrets in its own namespace', 'get secrets', 'operator', false],
  ['cannot create Secrets', 'create secrets', 'other', false],
  ['cannot take the leader-election Lease', `update leases.coordination.k8s.io/${LEASE}`, 'operator', false],
  ['cannot request ServiceAccount tokens', 'create serviceaccounts --subresource=token', 'operator', false],
  ['watches the AudienceClaims of its namespace', 'watch audienceclaims.apikeys.dev', 'operator', true],
  ['cannot create AudienceClaims', 'create audienceclaims.apikeys.dev', 'operator', false],
];

const WATCHING_CONTROLLER: Row[] = [
  ['creates Secrets in a watched namespace', 'create secrets', 'watched', true],
  ['cannot create Secrets in an unwatched namespace', 'create secrets', 'other', false],
  ['lists ApiKeys in a watched namespace', 'list apikeys.apikeys.dev', 'watched', true],
  ['cannot list ApiKeys cluster-wide', 'list apikeys.apikeys.dev', 'all', false],
  ['records events in a watched namespace', 'create events.events.k8s.io', 'watched', true],
  ['cannot record events in an unwatched namespace', 'create events.events.k8s.io', 'other', false],
  ['creates the signing-keys Secret in its own namespace', 'create secrets', 'operator', true],
  ['rotates the signing-keys Secret', `update secrets/${SIGNING_KEYS}`, 'operator', true],
  ['reads the seal-key Secret, by name', 'get secrets/apikey-operator-seal-key', 'operator', true],
  ['cannot change the seal key', 'patch secrets/apikey-operator-seal-key', 'operator', false],
  ['cannot read other Secrets of its own namespace', 'get secrets/ci-credentials', 'operator', false],
  ['renews the leader-election Lease', `update leases.coordination.k8s.io/${LEASE}`, 'operator', true],
  ['claims audiences in its own namespace', 'create audienceclaims.apikeys.dev', 'operator', true],
];

const WATCHING_TOKEN_SERVER: Row[] = [
  ['lists ApiKeys in a watched namespace', 'list apikeys.apikeys.dev', 'watched', true],
  ['cannot list ApiKeys in an unwatched namespace', 'list apikeys.apikeys.dev', 'other', false],
  ['cannot list ApiKeys cluster-wide', 'list apikeys.apikeys.dev', 'all', false],
  ['patches ApiKey status in a watched namespace', 'patch apikeys.apikeys.dev --subresource=status', 'watched', true],
  ['reads the signing-keys Secret', `get secrets/${SIGNING_KEYS}`, 'operator', true],
  ['creates TokenReviews', 'create tokenreviews.authentication.k8s.io', 'cluster', true],
];

describe.each([
  ['the token server ServiceAccount (deployment mode)', 'deployment', 'token-server', TOKEN_SERVER],
  ['the controller ServiceAccount (deployment mode)', 'deployment', 'controller', CONTROLLER],
  ['the controller ServiceAccount in sidecar mode', 'sidecar', 'controller', SIDECAR_CONTROLLER],
  ['the token server ServiceAccount in sidecar mode', 'sidecar', 'token-server', SIDECAR_TOKEN_SERVER],
  ['the controller ServiceAccount with watchNamespaces', 'watching', 'controller', WATCHING_CONTROLLER],
  ['the token server ServiceAccount with watchNamespaces', 'watching', 'token-server', WATCHING_TOKEN_SERVER],
] as const)('%s', (_name, mode, serviceAccount, rows) => {
  it.each(rows)('%s (%s in %s: %s)', async (_sentence, request, where, allowed) => {
    expect(await canI(releases[mode], serviceAccount, request, where)).toBe(allowed);
  });
});

describe('the token server, authenticated with its own ServiceAccount token', () => {
  it('gets and lists the signing-keys Secret by name, and is refused every other Secret', async () => {
    const { name, ns } = releases.deployment;
    const secret = (n: string): string => JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: n, namespace: ns.name }, stringData: { k: 'v' } });
    for (const s of [SIGNING_KEYS, 'ci-credentials']) {
      expect((await kubectl(['create', '-f', '-'], { input: secret(s) })).code).toBe(0);
    }
    const kubeconfig = await serviceAccountKubeconfig(ns.name, `${name}-token-server`, tmp);
    const as = (args: string[]) => kubectl([...args, '-n', ns.name], { kubeconfig });

    const get = await as(['get', 'secret', SIGNING_KEYS, '-o', 'name']);
    expect(get.stdout.trim(), get.stderr).toBe(`secret/${SIGNING_KEYS}`);
    const list = await as(['get', 'secrets', '--field-selector', `metadata.name=${SIGNING_KEYS}`, '-o', 'name']);
    expect(list.stdout.trim(), list.stderr).toBe(`secret/${SIGNING_KEYS}`);

    for (const refused of [['get', 'secret', 'ci-credentials'], ['get', 'secrets'], ['get', 'secrets', '--field-selector', 'metadata.name=ci-credentials']]) {
      const r = await as(refused);
      expect(r.code, refused.join(' ')).not.toBe(0);
      expect(r.stderr).toContain('Forbidden');
    }
  });
});
