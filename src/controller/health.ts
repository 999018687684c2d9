/** /healthz, /readyz and /metrics on their own port, for probes and Prometheus. */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface HealthChecks {
  live(): boolean;
  ready(): boolean;
  registry: Registry;
}

export function startHealthServer(port: number, checks: HealthChecks): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (ok: boolean) => {
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/healthz' || path === '/livez') {
      answer(checks.live());
    } else if (path === '/readyz') {
      answer(checks.ready());
    } else if (path === '/metrics') {
      checks.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': checks.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve(server));
  });
}
