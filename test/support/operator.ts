/**
 * Runs the operator the way the chart deploys it: a namespace of its own, the
 * chart's own RBAC (rendered with `helm template`, ServiceAccounts and roles
 * only, since no Pod runs here) applied to the test control plane, and a
 * kubeconfig holding a TokenRequest token of each ServiceAccount.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { createNamespace, kubectl, serviceAccountKubeconfig, uniqueName } from './cluster.ts';
import { chartIdentityObjects } from '../../scripts/render-manifests.ts';
import { renderChart, type KubeObject } from './helm.ts';
import { startController, startTokenServer, type RunningProcess, type TokenServerProcess } from './processes.ts';
import { adminClient } from './resources.ts';
import { waitFor } from './wait.ts';

export interface OperatorIdentity {
  release: string;
  /** The operator's own namespace, made for it and deleted by `cleanup`. */
  namespace: string;
  controllerKubeconfig: string;
  tokenServerKubeconfig: string;
  controllerServiceAccount: string;
  tokenServerServiceAccount: string;
  /** With `console` values: a kubeconfig of the console's ServiceAccount (its chart RBAC: the sign-out list only). */
  consoleKubeconfig?: string;
  cleanup(): Promise<void>;
}

/**
 * Creates a namespace for the operator, applies the chart's ServiceAccounts and
 * RBAC for an operator installed there, and returns kubeconfigs for its accounts.
 */
export async function installOperatorIdentity(
  values: {
    watchNamespaces?: string[]; tokenServerMode?: 'sidecar' | 'deployment'; admissionPolicy?: { enabled: boolean }; console?: Record<string, unknown>;
  } = {},
): Promise<OperatorIdentity> {
  const ns = await createNamespace('op');
  const namespace = ns.name;
  const release = uniqueName('op');
  const dir = mkdtempSync(join(tmpdir(), 'operator-identity-'));
  let docs: KubeObject[] = [];
  const cleanup = async (): Promise<void> => {
    // The cluster-scoped objects; the namespace takes the rest with it.
    for (const d of docs.filter((o) => o.metadata.namespace === undefined)) {
      await kubectl(['delete', `${d.kind.toLowerCase()}.${d.apiVersion.split('/')[0]}`, d.metadata.name, '--ignore-not-found', '--wait=false']);
    }
    rmSync(dir, { recursive: true, force: true });
    await ns.cleanup();
  };
  try {
    // Each program has its own account in both modes; by default the token server as its own Deployment.
    const { tokenServerMode = 'deployment', ...rest } = values;
    docs = chartIdentityObjects(await renderChart(release, namespace, { ...rest, tokenServer: { mode: tokenServerMode } }));
    const input = docs.map((d) => JSON.stringify(d)).join('\n');
    const r = await kubectl(['apply', '-f', '-'], { input });
    if (r.code !== 0) throw new Error(`applying the chart's RBAC failed: ${r.stderr}`);
    const sas = docs.filter((d) => d.kind === 'ServiceAccount').map((d) => d.metadata.name);
    const controllerServiceAccount = sas.find((n) => n.endsWith('-controller'));
    const tokenServerServiceAccount = sas.find((n) => n.endsWith('-token-server'));
    if (!controllerServiceAccount || !tokenServerServiceAccount) {
      throw new Error(`the chart rendered ServiceAccounts ${sas.join(', ')}; expected *-controller and *-token-server`);
    }
    const controllerKubeconfig = await serviceAccountKubeconfig(namespace, controllerServiceAccount, dir);
    const tokenServerKubeconfig = await serviceAccountKubeconfig(namespace, tokenServerServiceAccount, dir);
    const consoleServiceAccount = values.console ? sas.find((n) => n.endsWith('-console')) : undefined;
    const consoleKubeconfig = consoleServiceAccount && await serviceAccountKubeconfig(namespace, consoleServiceAccount, dir);
    return {
      release, namespace, controllerKubeconfig, tokenServerKubeconfig, controllerServiceAccount, tokenServerServiceAccount, cleanup,
      ...consoleKubeconfig ? { consoleKubeconfig } : {},
    };
  } catch (err) {
    // Nothing of a half-made identity outlives the failure.
    await cleanup();
    throw err;
  }
}

/**
 * A RoleBinding in `namespace` of one of the chart's ClusterRoles for people, to the ServiceAccount
 * `serviceAccountNamespace`/`serviceAccount`; resolves once the apiserver allows it the subresource
 * of Deployment `deploymentName`.
 */
export async function bindTokenRequester(
  identity: OperatorIdentity, namespace: string, serviceAccountNamespace: string, serviceAccount: string,
  role: 'deployment-token-requester' | 'deployment-read-token-requester', deploymentName = 'airflow',
  bindingName = `${serviceAccount}-${role}`,
): Promise<void> {
  const r = await kubectl(['create', 'rolebinding', bindingName, '-n', namespace,
    `--clusterrole=${identity.release}-apikey-operator-${role}`, `--serviceaccount=${serviceAccountNamespace}:${serviceAccount}`]);
  expect(r.code, r.stderr).toBe(0);
  // The apiserver's authorizer sees a new binding through its own watch, a moment later; and the
  // token server caches a denial for 10 s. Wait until the apiserver answers yes.
  const subresource = role === 'deployment-token-requester' ? 'token' : 'readtoken';
  await waitFor(`${serviceAccount} bound`, async () => {
    const review = await adminClient().create<{ status?: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview',
      spec: {
        user: `system:serviceaccount:${serviceAccountNamespace}:${serviceAccount}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${serviceAccountNamespace}`, 'system:authenticated'],
        resourceAttributes: { group: 'apikeys.dev', resource: 'deployments', subresource, verb: 'create', namespace, name: deploymentName },
      },
    });
    return review.status?.allowed === true;
  }, 5000, 20);
}

/** The operator as the chart runs it: its identity, its controller and its token server, each on its own account. */
export interface RunningOperator {
  identity: OperatorIdentity;
  controller: RunningProcess;
  server: TokenServerProcess;
  /** Stops both programs and removes the identity; safe to call after a failed start. */
  stop(): Promise<void>;
}

/**
 * Installs the chart's identity and starts the controller (first: it makes the signing keys the
 * token server needs to be ready) and the token server, with `tokenServerArgs` added to the
 * token server's command line.
 */
export async function startOperator(opts: { tokenServerArgs?: string[] } = {}): Promise<RunningOperator> {
  const identity = await installOperatorIdentity();
  let controller: RunningProcess | undefined;
  try {
    controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace });
    const server = await startTokenServer({
      kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, args: opts.tokenServerArgs,
    });
    const running = controller;
    return {
      identity, controller, server,
      async stop() {
        await Promise.all([server.stop(), running.stop()]);
        await identity.cleanup();
      },
    };
  } catch (err) {
    await controller?.stop();
    await identity.cleanup();
    throw err;
  }
}
