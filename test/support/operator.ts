/**
 * Runs the operator the way the chart deploys it: the chart's own RBAC
 * (rendered with `helm template`, ServiceAccounts and roles only, since no
 * Pod runs here) applied to the test control plane, and a kubeconfig holding
 * a TokenRequest token of each ServiceAccount.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubectl, serviceAccountKubeconfig, uniqueName } from './cluster.ts';
import { chartIdentityObjects } from '../../scripts/render-manifests.ts';
import { renderChart } from './helm.ts';

export interface OperatorIdentity {
  release: string;
  namespace: string;
  controllerKubeconfig: string;
  tokenServerKubeconfig: string;
  controllerServiceAccount: string;
  tokenServerServiceAccount: string;
  cleanup(): Promise<void>;
}

/**
 * Applies the chart's ServiceAccounts and RBAC for an operator installed in
 * `namespace` (which must exist), and returns kubeconfigs for its accounts.
 */
export async function installOperatorIdentity(namespace: string, values: { watchNamespaces?: string[] } = {}): Promise<OperatorIdentity> {
  const release = uniqueName('op');
  // The token server as its own Deployment, so that each program has its own account.
  const docs = chartIdentityObjects(await renderChart(release, namespace, { ...values, tokenServer: { mode: 'deployment' } }));
  const input = docs.map((d) => JSON.stringify(d)).join('\n');
  const r = await kubectl(['apply', '-f', '-'], { input });
  if (r.code !== 0) throw new Error(`applying the chart's RBAC failed: ${r.stderr}`);
  const sas = docs.filter((d) => d.kind === 'ServiceAccount').map((d) => d.metadata.name);
  const controllerServiceAccount = sas.find((n) => n.endsWith('-controller'));
  const tokenServerServiceAccount = sas.find((n) => n.endsWith('-token-server'));
  if (!controllerServiceAccount || !tokenServerServiceAccount) {
    throw new Error(`the chart rendered ServiceAccounts ${sas.join(', ')}; expected *-controller and *-token-server`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'operator-identity-'));
  const controllerKubeconfig = await serviceAccountKubeconfig(namespace, controllerServiceAccount, dir);
  const tokenServerKubeconfig = await serviceAccountKubeconfig(namespace, tokenServerServiceAccount, dir);
  const clusterScoped = docs.filter((d) => d.kind === 'ClusterRole' || d.kind === 'ClusterRoleBinding');
  return {
    release, namespace, controllerKubeconfig, tokenServerKubeconfig, controllerServiceAccount, tokenServerServiceAccount,
    async cleanup() {
      for (const d of clusterScoped) {
        await kubectl(['delete', d.kind.toLowerCase(), d.metadata.name, '--ignore-not-found', '--wait=false']);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
