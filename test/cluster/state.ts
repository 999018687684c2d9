/**
 * What `cluster:up` started, recorded in DIR/state.json for `cluster:down` and
 * the tests, and the one admin call everything that drives the cluster uses.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import type { Binaries } from './binaries.ts';
import type { NodeState } from './node/node.ts';
import type { ProcessRecord } from './processes.ts';

export interface ClusterState {
  dir: string;
  kubeconfig: string;
  /** The apiserver's URL from this machine (with a node, the relay's loopback port). */
  server: string;
  /** The ports the processes listen on (with a node, inside the node's namespace). */
  ports: { etcdClient: number; etcdPeer: number; apiserver: number };
  processes: ProcessRecord[];
  binaries: Binaries;
  node?: NodeState;
}

const STATE = 'state.json';

export function readState(dir: string): ClusterState | undefined {
  const f = join(resolve(dir), STATE);
  if (!existsSync(f)) return undefined;
  return JSON.parse(readFileSync(f, 'utf8')) as ClusterState;
}

export function writeState(state: ClusterState): void {
  writeFileSync(join(state.dir, STATE), JSON.stringify(state, null, 2));
}

/** Minimal admin-authenticated HTTPS call, with no dependency on the code under test. */
export function adminRequest(state: ClusterState, method: string, path: string, body?: unknown):
Promise<{ status: number; body: string }> {
  const pki = join(state.dir, 'pki');
  return new Promise((res, rej) => {
    const req = request(
      `${state.server}${path}`,
      {
        method,
        ca: readFileSync(join(pki, 'ca.crt')),
        cert: readFileSync(join(pki, 'admin.crt')),
        key: readFileSync(join(pki, 'admin.key')),
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        timeout: 5000,
      },
      (resp) => {
        let data = '';
        resp.setEncoding('utf8');
        resp.on('data', (c: string) => { data += c; });
        resp.on('end', () => res({ status: resp.statusCode ?? 0, body: data }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}
