/**
 * The count of a program's requests to the Kubernetes API, by method and
 * status code (0: unreachable), for the controller's and the token server's
 * /metrics alike: what each costs the apiserver, idle or busy.
 */
import { Counter, type Registry } from 'prom-client';
import type { KubeClient } from './client.ts';

export function instrumentKubeRequests(client: KubeClient, registry: Registry): void {
  const requests = new Counter({
    name: 'apikey_operator_kube_requests_total', help: 'Requests to the Kubernetes API by method and status code',
    labelNames: ['method', 'code'], registers: [registry],
  });
  client.observer = (method, code) => requests.inc({ method, code: String(code) });
}
