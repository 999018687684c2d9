import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/log.ts';
import { KubeClient, KubeError } from './client.ts';
import { CredentialHealth } from './credential-health.ts';
import { KubeConfig } from './kubeconfig.ts';

const log = createLogger({ level: 'silent' });
const unreachable = new KubeError(0, '', 'cannot reach the Kubernetes API: ECONNREFUSED');

describe('CredentialHealth', () => {
  it('is refused while any source\'s last answer is 401 or 403, and only a success of that source clears it', () => {
    const h = new CredentialHealth({ log });
    expect(h.refused()).toBeUndefined();
    h.report('apikeys/*', new KubeError(401, 'Unauthorized', 'Unauthorized'));
    expect(h.refused()).toMatchObject({ status: 401, source: 'apikeys/*' });
    h.report('secrets/op', new KubeError(403, 'Forbidden', 'forbidden'));
    h.report('apikeys/*');
    expect(h.refused()).toMatchObject({ status: 403, source: 'secrets/op' });
    h.report('secrets/op');
    expect(h.refused()).toBeUndefined();
  });

  it('takes an unreachable apiserver, a 5xx or a 404 for a partition or a fault of its own, not a refused credential', () => {
    const h = new CredentialHealth({ log });
    for (const err of [unreachable, new KubeError(503, 'ServiceUnavailable', ''), new KubeError(500, '', ''), new KubeError(404, 'NotFound', ''), new Error('EACCES')]) {
      h.report('probe', err);
      expect(h.refused()).toBeUndefined();
    }
    // Nor does a partition end a refusal: only an answer does.
    h.report('probe', new KubeError(401, 'Unauthorized', ''));
    h.report('probe', unreachable);
    expect(h.refused()?.status).toBe(401);
  });

  describe('its probe', () => {
    let server: Server | undefined;
    afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

    it('asks the apiserver every interval, with a limit of one object, and follows its answers', async () => {
      let status = 200;
      const seen: string[] = [];
      server = createServer((req, res) => {
        seen.push(req.url ?? '');
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status === 200 ? '{"items":[]}' : '{"kind":"Status","code":401,"reason":"Unauthorized","message":"Unauthorized"}');
      });
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
        users: [{ name: 'u', token: 't' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x',
      });
      const h = new CredentialHealth({ log, probe: { client: new KubeClient(kc), path: '/apis/apikeys.dev/v1/apikeys', intervalMs: 20 } });
      h.start();
      try {
        status = 401;
        await expect.poll(() => h.refused()?.status, { timeout: 2000 }).toBe(401);
        status = 200;
        await expect.poll(() => h.refused(), { timeout: 2000 }).toBeUndefined();
        expect(seen[0]).toBe('/apis/apikeys.dev/v1/apikeys?limit=1');
      } finally {
        await h.stop();
      }
    });
  });
});
