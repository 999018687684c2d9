/**
 * The alerts end to end: a real Prometheus server (Debian's `prometheus` package, on 127.0.0.1, in a
 * folder of its own, no remote write) loads the chart's rule file and scrapes the real controller
 * and token server every second, as the chart's ServiceMonitor would (honor_labels). A key that
 * expires soon makes ApiKeysExpiringSoon fire, read back through Prometheus' HTTP API; once it has
 * expired, a client still presenting its right secret makes ApiKeysExpiredButStillUsed fire.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { startController, startTokenServer, waitForHttp, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import { startPrometheus, type PrometheusServer } from './support/prometheus.ts';
import { createApiKey, createDeployment, credentialsOf, getSecret, uniqueAudience, waitForReady } from './support/resources.ts';
import { requestToken } from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

const AUDIENCE = uniqueAudience('prometheus');
/** The controller's only expiry warning in this test: 30 s before spec.expiresAt. */
const WARNING_MS = 30_000;

let ns: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: TokenServerProcess;
let prometheus: PrometheusServer;

beforeAll(async () => {
  ns = await createNamespace('prom');
  identity = await installOperatorIdentity();
  server = await startTokenServer({ kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, waitReady: false });
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, args: ['--expiry-warnings', '30s'],
  });
  await waitForHttp(`${server.url}/readyz`, server);
  prometheus = await startPrometheus([
    { job: 'apikey-operator-controller', target: `127.0.0.1:${controller.healthPort}` },
    { job: 'apikey-operator-token-server', target: new URL(server.metricsUrl).host },
  ]);
});

afterAll(async () => {
  await prometheus?.stop();
  await Promise.all([server?.stop(), controller?.stop()]);
  await identity?.cleanup();
  await ns?.cleanup();
});

/** The alerts of this test's namespace (or of none) with that name, as Prometheus reports them. */
async function alerts(name: string): Promise<Awaited<ReturnType<PrometheusServer['alerts']>>> {
  return (await prometheus.alerts()).filter((a) => a.labels.alertname === name && (a.labels.namespace ?? ns.name) === ns.name);
}

async function firing(name: string, timeoutMs: number) {
  return waitFor(`${name} firing`, async () => (await alerts(name)).find((a) => a.state === 'firing'), timeoutMs, 250);
}

describe('a real Prometheus with the chart\'s rules, scraping the real programs', () => {
  it('scrapes both programs: one leader, a ready token server, and no alert about either', async () => {
    const value = async (q: string) => Number((await prometheus.query(q))[0]?.value[1] ?? NaN);
    await waitFor('scraped', async () => (await value('sum(apikey_operator_leader)')) === 1 && (await value('sum(apikey_operator_token_server_ready)')) === 1, 30_000, 250);
    const up = await prometheus.query('up');
    expect(up.map((s) => [s.metric.job, s.value[1]]).sort()).toEqual([['apikey-operator-controller', '1'], ['apikey-operator-token-server', '1']]);
    // An evaluation before the first scrape sees no leader and makes ApiKeyOperatorNoLeader pending
    // (it needs 5 minutes to fire); once the leader is scraped, it is gone.
    for (const name of ['ApiKeyOperatorNoLeader', 'ApiKeyTokenServerNotReady']) {
      await waitFor(`no ${name}`, async () => (await alerts(name)).length === 0, 10_000, 250);
    }
  });

  it('fires ApiKeysExpiringSoon for a key within its warning, not before, and ApiKeysExpiredButStillUsed once a client uses it expired', async () => {
    await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
    const expiresAt = new Date(Math.ceil((Date.now() + WARNING_MS + 20_000) / 1000) * 1000);
    await createApiKey(ns.name, 'ci', { deploymentRef: { name: 'airflow' }, expiresAt: expiresAt.toISOString().replace(/\.\d+Z$/, 'Z') });
    await waitForReady(ns.name, 'ci');
    const key = credentialsOf((await getSecret(ns.name, 'ci'))!);

    // Prometheus sees the key ready, and nothing fires yet.
    await waitFor('the key counted ready', async () =>
      (await prometheus.query(`apikey_operator_apikeys{namespace="${ns.name}",deployment="airflow",state="ready"} == 1`)).length === 1, 20_000, 250);
    expect(Date.now()).toBeLessThan(expiresAt.getTime() - WARNING_MS);
    expect(await alerts('ApiKeysExpiringSoon')).toEqual([]);

    const soon = await firing('ApiKeysExpiringSoon', WARNING_MS + 30_000);
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt.getTime() - WARNING_MS);
    expect(soon.labels).toMatchObject({ namespace: ns.name, deployment: 'airflow', severity: 'warning' });
    expect(soon.annotations.summary).toBe(`ApiKeys of Deployment ${ns.name}/airflow expire soon`);
    expect(Number(soon.value)).toBe(1);
    // Well within a day, too: the critical one fires beside it.
    expect((await firing('ApiKeyExpiresWithinADay', 10_000)).labels).toMatchObject({ namespace: ns.name, deployment: 'airflow', severity: 'critical' });
    const soonest = await prometheus.query(`apikey_operator_apikey_soonest_expiry_timestamp_seconds{namespace="${ns.name}"}`);
    expect(soonest.map((s) => Number(s.value[1]))).toEqual([expiresAt.getTime() / 1000]);

    // Expired: a pipeline still presents the right secret, twice (a counter's first sample is no increase).
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt.getTime() - Date.now() + 200)));
    expect((await requestToken(server, key)).body.error_description).toBe(`the API key expired at ${expiresAt.toISOString()}`);
    await waitFor('the first refusal scraped', async () =>
      (await prometheus.query(`apikey_operator_token_expired_key_refusals_total{namespace="${ns.name}"}`)).length === 1, 10_000, 250);
    expect((await requestToken(server, key)).status).toBe(401);
    const used = await firing('ApiKeysExpiredButStillUsed', 20_000);
    expect(used.labels).toMatchObject({ namespace: ns.name, deployment: 'airflow', severity: 'warning' });
    // And the key is no longer counted as expiring: that alert has resolved.
    await waitFor('ApiKeysExpiringSoon resolved', async () => (await alerts('ApiKeysExpiringSoon')).length === 0 || undefined, 20_000, 250);
    expect((await prometheus.query(`apikey_operator_apikeys{namespace="${ns.name}",state="expired"}`)).map((s) => s.value[1])).toEqual(['1']);
  }, 150_000);
});
