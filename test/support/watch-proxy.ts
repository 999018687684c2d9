/**
 * A plain-HTTP proxy in front of the test apiserver that counts watch
 * requests and can misbehave the way a broken apiserver or middlebox does:
 * end every watch at once, or answer a watch and then send nothing. Every
 * other request (lists, writes) passes through as the admin. Clients reach it
 * with `proxyKubeConfig()`, which has no credentials of its own.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { adminKubeConfig, clusterState } from './cluster.ts';

export type WatchMode = 'pass' | 'end-at-once' | 'stall';

export interface WatchRecord {
  path: string;
  startedAt: number;
  endedAt?: number;
}

export class WatchProxy {
  mode: WatchMode = 'pass';
  readonly watches: WatchRecord[] = [];
  private server: Server | undefined;
  private port = 0;
  private readonly agent: Agent;
  private readonly target: URL;

  constructor() {
    const admin = adminKubeConfig();
    const user = admin.getCurrentUser();
    const cluster = admin.getCurrentCluster();
    const decode = (b64?: string) => (b64 ? Buffer.from(b64, 'base64') : undefined);
    this.agent = new Agent({ keepAlive: true, ca: decode(cluster?.caData), cert: decode(user?.certData), key: decode(user?.keyData) });
    this.target = new URL(clusterState().server);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => this.server!.once('listening', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.agent.destroy();
  }

  /** Watch requests whose path starts with `prefix`, started at or after `since` (epoch ms). */
  watchesOf(prefix: string, since = 0): WatchRecord[] {
    return this.watches.filter((w) => w.path.startsWith(prefix) && w.startedAt >= since);
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      // Plain HTTP on loopback: client-node allows http:// only with skipTLSVerify.
      clusters: [{ name: 'proxy', server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }],
      users: [{ name: 'anonymous' }],
      contexts: [{ name: 'proxy', cluster: 'proxy', user: 'anonymous' }],
      currentContext: 'proxy',
    });
    return kc;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const isWatch = url.searchParams.get('watch') === 'true';
    const record: WatchRecord | undefined = isWatch ? { path: url.pathname, startedAt: Date.now() } : undefined;
    if (record) {
      this.watches.push(record);
      res.on('close', () => { record.endedAt = Date.now(); });
    }
    if (record && this.mode === 'end-at-once') {
      res.writeHead(200, { 'content-type': 'application/json' }).end();
      return;
    }
    if (record && this.mode === 'stall') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      return;
    }
    const headers = { ...req.headers, host: this.target.host };
    delete headers.authorization;
    const upstream = request({
      host: this.target.hostname, port: this.target.port, path: req.url, method: req.method, headers, agent: this.agent,
    }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }
}
