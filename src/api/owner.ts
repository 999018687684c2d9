import type { ApiKey } from './generated.ts';
import { GROUP } from './names.ts';

/**
 * The ownerReference that ties an ApiKey to its apikeys.dev Deployment (the
 * one spec.deploymentRef names; it is immutable), or undefined before the
 * controller has set it. Both programs read it: its uid tells a key of the
 * live Deployment from one of a deleted Deployment of the same name.
 */
export function deploymentOwnerRef(ak: ApiKey): { name: string; uid: string } | undefined {
  const name = ak.spec.deploymentRef.name;
  return ak.metadata.ownerReferences?.find((r) =>
    r.kind === 'Deployment' && r.apiVersion.startsWith(`${GROUP}/`) && r.name === name);
}
