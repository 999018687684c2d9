/**
 * The chart's alert rules and Grafana dashboard, checked with the real promtool (Debian's
 * `prometheus` package): the rule file parses, its unit tests (test/fixtures/prometheus/
 * rules.test.yaml) pass and cover every alert, every metric a rule or a panel reads is one the
 * programs export, every panel's query parses, and the manual explains every alert.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ROOT } from './support/paths.ts';
import { alertRules, DASHBOARD_FILE, exportedMetricNames, metricNamesIn, PROMTOOL, RULES_FILE } from './support/prometheus.ts';
import { run } from './support/run.ts';

const RULE_TESTS = join(ROOT, 'test', 'fixtures', 'prometheus', 'rules.test.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'promtool-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Panel { type: string; title: string; targets?: { expr: string }[]; panels?: Panel[] }
const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as { uid: string; title: string; panels: Panel[]; templating: { list: { name: string; query?: unknown }[] } };
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
/** Grafana's variables, as Grafana substitutes them, so that promtool can parse the query. */
const substituted = (expr: string) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$namespace', '.*');

describe('the alert rules', () => {
  it('pass promtool check rules', async () => {
    const r = await run(PROMTOOL, ['check', 'rules', RULES_FILE]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`SUCCESS: ${alertRules().length} rules found`);
  });

  it('pass their promtool unit tests, which test every alert firing', async () => {
    const r = await run(PROMTOOL, ['test', 'rules', RULE_TESTS]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const tests = parseYaml(readFileSync(RULE_TESTS, 'utf8')) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] };
    const firing = new Set(tests.tests.flatMap((t) => t.alert_rule_test).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname));
    const quiet = new Set(tests.tests.flatMap((t) => t.alert_rule_test).filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname));
    const names = alertRules().map((r) => r.alert);
    expect(names.filter((n) => !firing.has(n))).toEqual([]);
    // Each alert also has a case where it must stay quiet, but the one that fires on an empty Prometheus.
    expect(names.filter((n) => !quiet.has(n) && n !== 'ApiKeyOperatorNoLeader')).toEqual([]);
  });

  it('fail promtool test rules when a rule breaks (the unit tests are not vacuous)', async () => {
    const broken = readFileSync(RULES_FILE, 'utf8').replace('apikey_operator_apikeys{state="expiring"}) > 0', 'apikey_operator_apikeys{state="expiring"}) > 5');
    writeBrokenCopy(broken);
    const r = await run(PROMTOOL, ['test', 'rules', join(tmp, 'test', 'rules.test.yaml')]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('ApiKeysExpiringSoon');
  });

  it('read only metrics the controller and the token server export, with severity, summary and description', async () => {
    const exported = await exportedMetricNames();
    for (const rule of alertRules()) {
      const used = metricNamesIn(rule.expr);
      expect(used.length, rule.alert).toBeGreaterThan(0);
      expect(used.filter((m) => !exported.has(m)), rule.alert).toEqual([]);
      expect(['warning', 'critical'], rule.alert).toContain(rule.labels.severity);
      expect(Object.keys(rule.annotations).sort(), rule.alert).toEqual(['description', 'summary']);
    }
  });

  it('are each explained in docs/operations/monitoring.md', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'operations', 'monitoring.md'), 'utf8');
    expect(alertRules().map((r) => r.alert).filter((a) => !doc.includes(`\`${a}\``))).toEqual([]);
  });
});

/** A rule file at tmp/rules.yaml holding `text`, and the unit tests at tmp/test/ reading it. */
function writeBrokenCopy(text: string): void {
  writeFileSync(join(tmp, 'rules.yaml'), text);
  const tests = readFileSync(RULE_TESTS, 'utf8').replace(/rule_files:\n {2}- .*\n/, 'rule_files:\n  - ../rules.yaml\n');
  expect(tests).toContain('../rules.yaml');
  mkdirSync(join(tmp, 'test'), { recursive: true });
  writeFileSync(join(tmp, 'test', 'rules.test.yaml'), tests);
}

describe('the Grafana dashboard', () => {
  it('is JSON with a uid, a title and a namespace variable, and each panel has a title and a query', () => {
    expect(dashboard.uid).toBe('apikey-operator');
    expect(dashboard.title).toBeTruthy();
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace']);
    expect(panels.length).toBeGreaterThanOrEqual(10);
    for (const p of panels) {
      expect(p.title, JSON.stringify(p)).toBeTruthy();
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
  });

  it('queries only metrics the programs export, and every query parses with promtool', async () => {
    const exported = await exportedMetricNames();
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
    for (const { title, expr } of exprs) {
      const used = metricNamesIn(expr);
      expect(used.length, title).toBeGreaterThan(0);
      expect(used.filter((m) => !exported.has(m)), title).toEqual([]);
    }
    // promtool parses PromQL in rule files: each query as a recording rule.
    const file = join(tmp, 'dashboard-queries.yaml');
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: exprs.map((e, i) => ({ record: `dashboard:query_${i}`, expr: substituted(e.expr) })) }] }));
    const r = await run(PROMTOOL, ['check', 'rules', file]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`SUCCESS: ${exprs.length} rules found`);
  });

  it('a query promtool cannot parse is caught', async () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'x', rules: [{ record: 'x:y', expr: 'sum by (le (rate(x[5m]))' }] }] }));
    expect((await run(PROMTOOL, ['check', 'rules', file])).code).not.toBe(0);
  });
});
