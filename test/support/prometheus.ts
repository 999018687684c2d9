/**
 * Prometheus for the tests: the operator's alert rules and dashboard (the chart's files), the metric
 * names the programs export, and a real Prometheus server (Debian's `prometheus` package) on a
 * loopback port with a folder of its own, scraping targets the test names. It evaluates every second,
 * keeps nothing and writes nowhere else.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import { freePort } from '../cluster/controlplane.ts';
import { ControllerMetrics } from '../../src/controller/metrics.ts';
import type { Caches } from '../../src/controller/caches.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { TokenServerMetrics } from '../../src/token-server/metrics.ts';
import { CHART_DIR } from '../../scripts/render-manifests.ts';
import { startProcess, waitForHttp, type RunningProcess } from './processes.ts';

export const RULES_FILE = join(CHART_DIR, 'files', 'prometheus-rules.yaml');
export const DASHBOARD_FILE = join(CHART_DIR, 'files', 'grafana-dashboard.json');
export const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';
export const PROMETHEUS = process.env.PROMETHEUS ?? '/usr/bin/prometheus';

export interface AlertRule { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }

export function alertRules(): AlertRule[] {
  const file = parseYaml(readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return file.groups.flatMap((g) => g.rules);
}

/** Every series name the controller and the token server can export (a histogram's _bucket, _sum and _count). */
export async function exportedMetricNames(): Promise<Set<string>> {
  const noClient = {} as KubeClient;
  const controller = new ControllerMetrics();
  controller.instrument(noClient);
  const emptyInformer = { size: 0, list: () => [] };
  controller.watch([], { apiKeys: emptyInformer, deployments: emptyInformer, federatedCredentials: emptyInformer, secrets: emptyInformer, audienceClaims: emptyInformer } as unknown as Caches);
  const tokenServer = new TokenServerMetrics({ sizes: () => ({}), rateLimitEntries: () => 0, ready: () => true, signingKeysProblem: () => undefined });
  tokenServer.instrument(noClient);
  const names = new Set<string>();
  for (const registry of [controller.registry, tokenServer.registry] as Registry[]) {
    for (const m of await registry.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${m.name}${s}`);
    }
  }
  return names;
}

/** The metric names an expression reads: identifiers that are neither functions, keywords nor label names. */
export function metricNamesIn(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutLabels = withoutStrings.replace(/\{[^}]*\}/g, '{}').replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...withoutLabels.matchAll(/\b(apikey_operator_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

export interface PrometheusServer {
  url: string;
  process: RunningProcess;
  /** The alerts Prometheus holds now (GET /api/v1/alerts). */
  alerts(): Promise<{ labels: Record<string, string>; annotations: Record<string, string>; state: string; value: string }[]>;
  /** An instant query (GET /api/v1/query). */
  query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  stop(): Promise<void>;
}

/**
 * Starts Prometheus on 127.0.0.1 with the chart's rules, scraping `targets` (host:port, /metrics)
 * every second with honor_labels, as the chart's ServiceMonitor does. Resolves once it is ready.
 */
export async function startPrometheus(targets: { job: string; target: string }[]): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'prometheus-'));
  const port = await freePort();
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
    rule_files: [RULES_FILE],
    scrape_configs: targets.map((t) => ({ job_name: t.job, honor_labels: true, static_configs: [{ targets: [t.target] }] })),
  };
  writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config));
  const server = startProcess('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--storage.tsdb.retention.time=1h', '--log.level=warn',
  ], {}, PROMETHEUS);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/-/ready`, server);
  } catch (err) {
    await server.kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${url}${path}`);
    const body = await r.json() as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? r.status}`);
    return body.data;
  };
  return {
    url, process: server,
    alerts: async () => (await api<{ alerts: Awaited<ReturnType<PrometheusServer['alerts']>> }>('/api/v1/alerts')).alerts,
    query: (q) => api<{ result: Awaited<ReturnType<PrometheusServer['query']>> }>(`/api/v1/query?query=${encodeURIComponent(q)}`).then((d) => d.result),
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
