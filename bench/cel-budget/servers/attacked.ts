/**
 * The token server of bench/cel-budget/run.ts: the benchmark's tenants and
 * keys from a MemoryKeyStore, plus an attacking tenant whose Deployment has
 * FederatedCredentials holding the costliest expressions the CRD admits, and
 * the CI issuer's key as a local key set (no network). Exchange throttling
 * is off, as for an attacker spread over many addresses.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { createLocalJWKSet, type JWK } from 'jose';
import { API_VERSION, type FederatedCredential } from '../../../src/api/index.ts';
import { createLogger } from '../../../src/shared/log.ts';
import { IssuerKeys } from '../../../src/token-server/issuer-keys.ts';
import { startTokenServer } from '../../../src/token-server/main.ts';
import { MemoryKeyStore } from '../../../src/token-server/memory-key-store.ts';
import { announce, AUDIENCE, ISSUER, readData } from '../../token-endpoint/data.ts';
import { readFileSync } from 'node:fs';

export const CI_ISSUER = 'https://ci.bench.example';
export interface AttackData { jwk: JWK; expressions: string[] }

const data = readData(process.argv[2]!);
const attack = JSON.parse(readFileSync(process.argv[3]!, 'utf8')) as AttackData;
const attacker = data.deployments[0]!;
const credentials: FederatedCredential[] = attack.expressions.map((claims, i) => ({
  apiVersion: API_VERSION, kind: 'FederatedCredential',
  metadata: {
    namespace: attacker.metadata.namespace, name: `worst-${i}`, uid: `uid-worst-${i}`, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, i)),
    ownerReferences: [{ apiVersion: API_VERSION, kind: 'Deployment', name: attacker.metadata.name!, uid: attacker.metadata.uid! }],
  },
  spec: { deploymentRef: { name: attacker.metadata.name! }, issuer: CI_ISSUER, claims },
}));
const log = createLogger({ level: 'warn' });
const store = new MemoryKeyStore({ apiKeys: data.apiKeys, deployments: data.deployments, signingKeys: data.signingKeys, federatedCredentials: credentials });
const federation = new IssuerKeys({ issuers: new Set([CI_ISSUER]), log, keySets: new Map([[CI_ISSUER, createLocalJWKSet({ keys: [attack.jwk] })]]) });
const server = await startTokenServer({
  kc: new KubeConfig(), port: 0, host: '127.0.0.1', issuer: ISSUER, audiences: [AUDIENCE],
  operatorNamespace: 'bench', namespaces: [], logLevel: 'warn',
}, { store, log, federation, exchangeLimits: { freeFailures: 1e9 } });
announce(server.port);
process.once('SIGTERM', () => { void server.close(1000).then(() => process.exit(0)); });
