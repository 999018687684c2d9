/**
 * Deployments and ApiKeys shaped the way the controller leaves them (owner
 * reference, status with key id, secret hash and Ready), for unit tests, the
 * benchmark, and integration tests that exercise the token server alone.
 */
import { randomUUID } from 'node:crypto';
import type { ApiKey, ApiKeySpec, ApiKeyStatus, Deployment, DeploymentSpec } from '../api/index.ts';
import { API_VERSION } from '../api/index.ts';
import { generateKeyId, generateSecret, hashSecret } from '../keys/format.ts';
import { metaTime } from '../kube/types.ts';

export function deploymentObject(namespace: string, name: string, spec: DeploymentSpec = {}, uid = randomUUID()): Deployment {
  return {
    apiVersion: API_VERSION, kind: 'Deployment',
    metadata: { namespace, name, uid, resourceVersion: '1' },
    spec,
  };
}

export interface KeyFixture {
  apiKey: ApiKey;
  keyId: string;
  secret: string;
}

/** A ready ApiKey of `deployment`, with a fresh id and secret unless given. */
export function apiKeyFixture(deployment: Deployment, name: string, opts: {
  spec?: Partial<ApiKeySpec>;
  status?: Partial<ApiKeyStatus>;
  keyId?: string;
  secret?: string;
  owned?: boolean;
} = {}): KeyFixture {
  const keyId = opts.keyId ?? generateKeyId();
  const secret = opts.secret ?? generateSecret();
  const now = metaTime();
  const apiKey: ApiKey = {
    apiVersion: API_VERSION, kind: 'ApiKey',
    metadata: {
      namespace: deployment.metadata.namespace, name, uid: randomUUID(), resourceVersion: '1', creationTimestamp: new Date(),
      ownerReferences: opts.owned === false ? undefined : [{
        apiVersion: API_VERSION, kind: 'Deployment', name: deployment.metadata.name!, uid: deployment.metadata.uid!,
      }],
    },
    spec: { deploymentRef: { name: deployment.metadata.name! }, permissions: ['deploy'], tokenTTL: '24h', ...opts.spec },
    status: {
      keyId,
      secretName: name,
      secretHash: hashSecret(secret),
      conditions: [{ type: 'Ready', status: 'True', reason: 'SecretReady', message: 'ready', lastTransitionTime: now }],
      ...opts.status,
    },
  };
  return { apiKey, keyId, secret };
}
