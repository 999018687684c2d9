import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CRD_FILES = [
  join(ROOT, 'crds', 'apikeys.dev_deployments.yaml'),
  join(ROOT, 'crds', 'apikeys.dev_apikeys.yaml'),
  join(ROOT, 'crds', 'apikeys.dev_federatedcredentials.yaml'),
  join(ROOT, 'crds', 'apikeys.dev_audienceclaims.yaml'),
];
