import type { V1ObjectMeta } from '@kubernetes/client-node';
import { GROUP } from './names.ts';

/** What names a Deployment of its namespace: an ApiKey or a FederatedCredential. */
export interface DeploymentBound {
  metadata: V1ObjectMeta;
  spec: { deploymentRef: { name: string } };
}

/**
 * The ownerReference that ties an ApiKey (or a FederatedCredential) to its apikeys.dev Deployment (the
 * one spec.deploymentRef names; it is immutable), or undefined before the
 * controller has set it. Both programs read it: its uid tells a key of the
 * live Deployment from one of a deleted Deployment of the same name.
 */
export function deploymentOwnerRef(ak: DeploymentBound): { name: string; uid: string } | undefined {
  const name = ak.spec.deploymentRef.name;
  return ak.metadata.ownerReferences?.find((r) =>
    r.kind === 'Deployment' && r.apiVersion.startsWith(`${GROUP}/`) && r.name === name);
}
