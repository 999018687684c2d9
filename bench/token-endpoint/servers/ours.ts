/** This project's token server, serving the benchmark data from a MemoryKeyStore instead of watches. */
import { KubeConfig } from '@kubernetes/client-node';
import { startTokenServer } from '../../../src/token-server/main.ts';
import { MemoryKeyStore } from '../../../src/token-server/memory-key-store.ts';
import { announce, AUDIENCE, ISSUER, readData } from '../data.ts';

const data = readData(process.argv[2]!);
const store = new MemoryKeyStore({ apiKeys: data.apiKeys, deployments: data.deployments, signingKeys: data.signingKeys });
const server = await startTokenServer({
  kc: new KubeConfig(), port: 0, host: '127.0.0.1', issuer: ISSUER, audiences: [AUDIENCE],
  operatorNamespace: 'bench', namespaces: [], logLevel: 'warn',
}, { store });
announce(server.port);
process.once('SIGTERM', () => { void server.close(1000).then(() => process.exit(0)); });
