/**
 * Makes the shared test apiserver trust a test OpenID Connect provider: the
 * control plane starts with an empty structured authentication configuration
 * file (test/cluster/controlplane.ts); this writes the provider in as its one
 * JWT issuer, waits until the apiserver has reloaded it (a token of the
 * provider is accepted by SelfSubjectReview), and puts the empty file back
 * afterwards, so that no other test meets an issuer that is gone.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { bearerKubeConfig } from '../../src/console/in-cluster-options.ts';
import { KubeClient, KubeError, selfSubjectReview } from '../../src/kube/client.ts';
import { authenticationConfigFile, EMPTY_AUTHENTICATION_CONFIG } from '../cluster/controlplane.ts';
import { clusterState } from './cluster.ts';
import type { TestOidcProvider } from './oidc-provider.ts';
import { waitFor } from './wait.ts';

/** The prefix the apiserver puts before an OIDC person's name and groups. */
export const OIDC_PREFIX = 'oidc:';

/** The structured authentication configuration that trusts `issuer` for ID tokens whose audience is `audience`. */
export function authenticationConfiguration(o: { issuer: string; caPem: string; audience: string }): string {
  return stringify({
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'AuthenticationConfiguration',
    jwt: [{
      issuer: { url: o.issuer, certificateAuthority: o.caPem, audiences: [o.audience] },
      claimMappings: {
        username: { claim: 'sub', prefix: OIDC_PREFIX },
        groups: { claim: 'groups', prefix: OIDC_PREFIX },
      },
    }],
  });
}

/** Who the apiserver says the bearer of `token` is (SelfSubjectReview), or its HTTP status when it refuses. */
export async function whoAmI(token: string): Promise<{ username: string; groups: string[] } | number> {
  const state = clusterState();
  const client = new KubeClient(bearerKubeConfig({ server: state.server, caFile: `${state.dir}/pki/ca.crt` }, token));
  try {
    const info = await selfSubjectReview(client);
    return { username: info.username ?? '', groups: info.groups ?? [] };
  } catch (err) {
    if (err instanceof KubeError) return err.status;
    throw err;
  }
}

/** Makes the apiserver trust `provider` for `audience`; resolves once it does, with the way back to trusting none. */
export async function trustIssuer(provider: TestOidcProvider, audience: string): Promise<{ restore(): void }> {
  const state = clusterState();
  const apiserver = state.processes.find((p) => p.name === 'kube-apiserver');
  if (!apiserver?.args.some((a) => a.startsWith('--authentication-config='))) {
    throw new Error(`the control plane in ${state.dir} was started without --authentication-config; restart it (cluster:down, cluster:up)`);
  }
  const file = authenticationConfigFile(state.dir);
  // Replaced whole (written aside, then renamed), so the apiserver never reads a half-written file.
  const replace = (content: string) => {
    writeFileSync(`${file}.new`, content);
    renameSync(`${file}.new`, file);
  };
  replace(authenticationConfiguration({ issuer: provider.issuer, caPem: provider.caPem, audience }));
  const restore = () => replace(EMPTY_AUTHENTICATION_CONFIG);
  try {
    // The apiserver notices the file's change and reloads it; the new issuer is ready once its discovery was fetched.
    const probe = await provider.mintIdToken({ sub: 'reload-probe', audience });
    await waitFor('the apiserver to trust the test OIDC issuer', async () => {
      const who = await whoAmI(probe);
      return typeof who === 'object' && who.username === `${OIDC_PREFIX}reload-probe`;
    }, 120_000, 500);
  } catch (err) {
    restore();
    throw err;
  }
  return { restore };
}
