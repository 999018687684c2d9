/**
 * The Helm chart renders what each of its values asks for, every pod it renders is hardened, bad
 * values are refused by values.schema.json, and the copies that come from elsewhere (the chart's
 * CRDs, manifests/install/) have not drifted from their sources.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  V1ClusterRole, V1ClusterRoleBinding, V1Container, V1CustomResourceDefinition, V1Deployment, V1Ingress, V1NetworkPolicy,
  V1PodDisruptionBudget, V1Role, V1RoleBinding, V1Service, V1ServiceAccount, V1ValidatingAdmissionPolicy,
  V1ValidatingAdmissionPolicyBinding, V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  CHART_CRDS_DIR, CHART_DIR, CRDS_DIR, INSTALL_DIR, crdFileNames, renderInstallManifests,
} from '../scripts/render-manifests.ts';
import { clusterState } from './support/cluster.ts';
import {
  DEFAULT_KINDS, DEFAULT_KINDS_WITHOUT_CRDS, findObject, helm, kindCounts, objectsOfKind, renderChart, type KubeObject,
} from './support/helm.ts';

const RELEASE = 'ako';
const NS = 'ops';
const F = 'ako-apikey-operator';
const TOKEN_SA = `${F}-token-server`;
const CONTROLLER_SA = `${F}-controller`;
const CONSOLE_SA = `${F}-console`;

/** The console, in-cluster mode, with every value that changes what it renders. */
const CONSOLE_VALUES = {
  console: {
    enabled: true,
    oidc: {
      issuerURL: 'https://idp.example.com/realms/k8s', clientID: 'apikey-console',
      clientSecret: { existingSecret: 'console-oidc', key: 'secret' }, caConfigMap: 'idp-ca', scopes: ['openid', 'email', 'groups'],
    },
    defaultNamespace: 'team-a',
    ingress: { enabled: true, className: 'nginx', host: 'console.example.com', tls: [{ secretName: 'console-tls', hosts: ['console.example.com'] }] },
    extraArgs: ['--session-note=extra'],
    extraEnv: [{ name: 'EXTRA', value: '1' }],
  },
  serviceAccount: { console: { annotations: { 'iam.example.com/role': 'console' } } },
  topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway' }],
};

function podTemplates(objects: KubeObject[]): { name: string; deployment: V1Deployment }[] {
  return objectsOfKind<V1Deployment>(objects, 'Deployment').map((d) => ({ name: d.metadata?.name ?? '', deployment: d }));
}

function containersOf(objects: KubeObject[]): V1Container[] {
  return podTemplates(objects).flatMap(({ deployment }) => deployment.spec?.template.spec?.containers ?? []);
}

function container(objects: KubeObject[], deployment: string, name: string): V1Container {
  const c = findObject<V1Deployment>(objects, 'Deployment', deployment).spec?.template.spec?.containers
    .find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in ${deployment}`);
  return c;
}

/** The value of `--name=value` in a container's args, or undefined when the flag is absent. */
function flag(c: V1Container, name: string): string | undefined {
  const prefix = `--${name}=`;
  return c.args?.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

/** Subjects of the bindings that grant the ClusterRole or Role `role`. */
function subjectsOf(objects: KubeObject[], role: string): string[] {
  return [...objectsOfKind<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding'), ...objectsOfKind<V1RoleBinding>(objects, 'RoleBinding')]
    .filter((b) => b.roleRef.name === role)
    .flatMap((b) => (b.subjects ?? []).map((s) => `${s.kind}:${s.namespace ?? ''}/${s.name}`));
}

/** Every binding subject that is the ServiceAccount `name`, whatever role it is bound to. */
function subjectsOfServiceAccount(objects: KubeObject[], name: string): string[] {
  return [...objectsOfKind<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding'), ...objectsOfKind<V1RoleBinding>(objects, 'RoleBinding')]
    .flatMap((b) => (b.subjects ?? []).filter((x) => x.kind === 'ServiceAccount' && x.name === name).map(() => b.roleRef.name));
}

/** The Service's selector matches the Deployment's pods, and its target port is one of theirs. */
function expectServiceSelects(objects: KubeObject[], service: string, deployment: string): void {
  const svc = findObject<V1Service>(objects, 'Service', service);
  const pod = findObject<V1Deployment>(objects, 'Deployment', deployment).spec?.template;
  expect(pod?.metadata?.labels).toMatchObject(svc.spec?.selector ?? { missing: 'selector' });
  const podPorts = (pod?.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).map((p) => p.name));
  for (const p of svc.spec?.ports ?? []) expect(podPorts).toContain(p.targetPort);
}

/** The labels the chart puts on every object of release `release`. */
function chartLabels(release: string): Record<string, string> {
  return {
    'helm.sh/chart': 'apikey-operator-0.2.0', 'app.kubernetes.io/name': 'apikey-operator', 'app.kubernetes.io/instance': release,
    'app.kubernetes.io/version': '0.2.0', 'app.kubernetes.io/managed-by': 'Helm', 'app.kubernetes.io/part-of': 'apikey-operator',
  };
}

/** The CRDs of crds/, as the chart should ship them: the same objects, but for the labels and annotations it adds. */
function sourceCrds(): V1CustomResourceDefinition[] {
  return crdFileNames().map((f) => parseYaml(readFileSync(join(CRDS_DIR, f), 'utf8')) as V1CustomResourceDefinition);
}

/** Each rendered CRD is its crds/ source with only metadata.labels and metadata.annotations added. */
function expectSourceCrds(objects: KubeObject[], annotations: Record<string, string> | undefined): void {
  const rendered = objectsOfKind<V1CustomResourceDefinition>(objects, 'CustomResourceDefinition');
  expect(rendered.map((c) => c.metadata?.name).sort()).toEqual(sourceCrds().map((c) => c.metadata?.name).sort());
  for (const source of sourceCrds()) {
    const crd = findObject<V1CustomResourceDefinition>(objects, 'CustomResourceDefinition', source.metadata?.name ?? '');
    const { labels, annotations: actual, ...metadata } = crd.metadata ?? {};
    const { labels: sourceLabels, ...sourceMetadata } = source.metadata ?? {};
    expect({ ...crd, metadata }).toEqual({ ...source, metadata: sourceMetadata });
    expect(labels).toEqual({ ...sourceLabels, ...chartLabels(RELEASE) });
    expect(actual).toEqual(annotations);
  }
}

/** The names of a pod template's volumes, and of each container's mounts. */
function volumesOf(d: V1Deployment): { volumes: string[]; mounts: string[][] } {
  const pod = d.spec?.template.spec;
  return {
    volumes: (pod?.volumes ?? []).map((v) => v.name),
    mounts: (pod?.containers ?? []).map((c) => (c.volumeMounts ?? []).map((m) => `${m.name}:${m.mountPath}`)),
  };
}

/** The admission policy `name` and its binding, which must name it. */
function policyOf(objects: KubeObject[], name: string): { policy: V1ValidatingAdmissionPolicy; binding: V1ValidatingAdmissionPolicyBinding } {
  const policy = findObject<V1ValidatingAdmissionPolicy>(objects, 'ValidatingAdmissionPolicy', name);
  const binding = findObject<V1ValidatingAdmissionPolicyBinding>(objects, 'ValidatingAdmissionPolicyBinding', name);
  expect(binding.spec).toMatchObject({ policyName: name, validationActions: ['Deny'] });
  expect(policy.spec?.failurePolicy).toBe('Fail');
  return { policy, binding };
}

interface ChartCase { values: object; check: (objects: KubeObject[]) => void }

/** A JWKS as federation.privateIssuers takes it inline (the chart copies it; the token server checks it). */
const PRIVATE_JWKS = '{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}';

/** A CA bundle as federation.caBundle takes it (the chart copies it, it does not parse it). */
const FEDERATION_CA = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

const CASES: [string, ChartCase][] = [
  ['the default values (the token server as a sidecar)', { values: {}, check: (o) => {
    expect(kindCounts(o)).toEqual(DEFAULT_KINDS);
    const pod = findObject<V1Deployment>(o, 'Deployment', `${F}-controller`).spec?.template.spec;
    expect(pod?.containers.map((c) => c.name)).toEqual(['controller', 'token-server']);
    expect(pod?.serviceAccountName).toBe(CONTROLLER_SA);
    expectServiceSelects(o, `${F}-token`, `${F}-controller`);
    expectServiceSelects(o, `${F}-controller-metrics`, `${F}-controller`);
    expectServiceSelects(o, `${F}-token-metrics`, `${F}-controller`);
    const ctl = container(o, `${F}-controller`, 'controller');
    const ts = container(o, `${F}-controller`, 'token-server');
    expect(ctl.args?.[0]).toBe('controller');
    expect(ts.args?.[0]).toBe('token-server');
    expect(flag(ts, 'max-cache-staleness')).toBeUndefined(); // no bound unless asked for
    // TLS by default, with the operator's own certificate for the token Service's names.
    expect(flag(ctl, 'token-url')).toBe(`https://${F}-token.${NS}.svc:8080/oauth/token`);
    expect(flag(ts, 'issuer')).toBe(`https://${F}-token.${NS}.svc:8080`);
    expect(flag(ctl, 'serving-cert-secret')).toBe(`${F}-token-tls`);
    expect(flag(ctl, 'serving-cert-dns-names')).toBe(
      [`${F}-token`, `${F}-token.${NS}`, `${F}-token.${NS}.svc`, `${F}-token.${NS}.svc.cluster.local`, 'localhost', '127.0.0.1'].join(','));
    expect([flag(ctl, 'serving-cert-validity'), flag(ctl, 'serving-ca-validity')]).toEqual(['720h', '87600h']);
    expect([flag(ts, 'tls-cert-file'), flag(ts, 'tls-private-key-file')]).toEqual(['/etc/apikey-operator/tls/tls.crt', '/etc/apikey-operator/tls/tls.key']);
    expect(pod?.volumes?.find((v) => v.name === 'token-tls')?.secret).toEqual({ secretName: `${F}-token-tls`, optional: true });
    expect(ts.startupProbe?.httpGet).toMatchObject({ path: '/healthz', scheme: 'HTTPS' });
    expect(ts.readinessProbe?.httpGet?.scheme).toBe('HTTPS');
    // The audit log, to stdout.
    expect([flag(ts, 'audit-log-path'), flag(ts, 'audit-log-maxsize'), flag(ts, 'audit-log-maxbackup')]).toEqual(['-', '100', '10']);
    // Rights for the CA bundle: one ConfigMap name, and namespaces to reach new ones; the two Secrets by name.
    expect(findObject<V1ClusterRole>(o, 'ClusterRole', `${F}-controller`).rules).toEqual(expect.arrayContaining([
      { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['apikey-operator-ca.crt'], verbs: ['get', 'list', 'watch', 'update'] },
    ]));
    expect(findObject<V1ClusterRole>(o, 'ClusterRole', `${F}-controller-namespaces`).rules).toEqual(
      [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] }]);
    expect(subjectsOf(o, `${F}-controller-namespaces`)).toEqual([`ServiceAccount:${NS}/${CONTROLLER_SA}`]);
    expect(findObject<V1Role>(o, 'Role', `${F}-controller-operator-namespace`).rules).toContainEqual(
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['apikey-operator-ca', `${F}-token-tls`], verbs: ['get', 'update'] });
    expect(flag(ts, 'port')).toBe('8080');
    expect(flag(ts, 'metrics-port')).toBe('9090');
    expect(ts.ports?.map((p) => [p.name, p.containerPort])).toEqual([['http', 8080], ['metrics', 9090]]);
    expect(flag(ts, 'user-token-ttl')).toBe('1h');
    expect(flag(ctl, 'health-port')).toBe('8081');
    expect(flag(ctl, 'signing-algorithm')).toBe('ES256');
    expect(flag(ctl, 'signing-key-rotation')).toBe('720h');
    expect(flag(ctl, 'leader-elect')).toBe('true');
    expect(flag(ctl, 'expiry-warnings')).toBe('720h,168h,24h');
    expect(flag(ctl, 'workers')).toBe('4');
    expect(pod?.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod?.topologySpreadConstraints).toBeUndefined();
    expectSourceCrds(o, { 'helm.sh/resource-policy': 'keep' });
    // Each container its own identity: the pod mounts no token for all; the controller its own, and
    // the token server the token the controller requests for the token server's ServiceAccount.
    const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(ctl.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }, { name: 'controller-token', mountPath: SA_DIR, readOnly: true },
      { name: 'token-server-token', mountPath: '/var/run/apikey-operator/token-server' }]);
    expect(ts.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }, { name: 'token-server-token', mountPath: SA_DIR, readOnly: true },
      { name: 'token-tls', mountPath: '/etc/apikey-operator/tls', readOnly: true }]);
    expect(pod?.volumes?.find((v) => v.name === 'token-server-token')?.emptyDir).toEqual({ medium: 'Memory', sizeLimit: '1Mi' });
    expect(pod?.volumes?.find((v) => v.name === 'controller-token')?.projected?.sources?.map((x) => Object.keys(x)[0])).toEqual(
      ['serviceAccountToken', 'configMap', 'downwardAPI']);
    expect(flag(ctl, 'token-server-service-account')).toBe(TOKEN_SA);
    expect(flag(ctl, 'token-server-token-dir')).toBe('/var/run/apikey-operator/token-server');
    expect(findObject<V1Role>(o, 'Role', `${F}-controller-operator-namespace`).rules).toContainEqual(
      { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: [TOKEN_SA], verbs: ['create'] });
    for (const c of [ctl, ts]) {
      // No CPU limit: a throttled token server answers slowly. Memory stays bounded.
      expect(c.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } });
      expect(flag(c, 'operator-namespace')).toBe(NS);
      expect(flag(c, 'log-level')).toBe('info');
      expect(flag(c, 'namespaces')).toBeUndefined();
      expect(flag(c, 'audiences')).toBeUndefined();
      expect(c.env?.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath])).toEqual(
        [['POD_NAME', 'metadata.name'], ['POD_NAMESPACE', 'metadata.namespace']]);
    }
    // The token server's rights go to its own ServiceAccount, never to the controller's.
    expect(subjectsOf(o, `${F}-controller`)).toEqual([`ServiceAccount:${NS}/${CONTROLLER_SA}`]);
    for (const role of [`${F}-token-server`, `${F}-token-server-reviews`, `${F}-token-server-signing-keys`]) {
      expect(subjectsOf(o, role)).toEqual([`ServiceAccount:${NS}/${TOKEN_SA}`]);
    }
    const requester = findObject<V1ClusterRole>(o, 'ClusterRole', `${F}-deployment-token-requester`);
    expect(requester.rules).toEqual([{ apiGroups: ['apikeys.dev'], resources: ['deployments/token'], verbs: ['create'] }]);
    expect(requester.metadata?.labels?.['rbac.authorization.k8s.io/aggregate-to-edit']).toBe('true');
    const reader = findObject<V1ClusterRole>(o, 'ClusterRole', `${F}-deployment-read-token-requester`);
    expect(reader.rules).toEqual([{ apiGroups: ['apikeys.dev'], resources: ['deployments/readtoken'], verbs: ['create'] }]);
    expect(reader.metadata?.labels?.['rbac.authorization.k8s.io/aggregate-to-edit']).toBe('true');
    expect(findObject<V1ClusterRole>(o, 'ClusterRole', `${F}-view`).metadata?.labels?.['rbac.authorization.k8s.io/aggregate-to-view']).toBe('true');
    expect(findObject<V1ClusterRole>(o, 'ClusterRole', `${F}-edit`).rules?.[0]?.verbs).toEqual(
      expect.arrayContaining(['create', 'update', 'patch', 'delete']));
  } }],
  ['the token server as its own Deployment with a HorizontalPodAutoscaler and a PodDisruptionBudget', {
    values: { tokenServer: { mode: 'deployment', autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 12, targetCPUUtilizationPercentage: 60 } } },
    check: (o) => {
      expect(kindCounts(o)).toEqual({ ...DEFAULT_KINDS, ServiceAccount: 2, Deployment: 2, PodDisruptionBudget: 1, HorizontalPodAutoscaler: 1 });
      expect(findObject<V1Deployment>(o, 'Deployment', `${F}-controller`).spec?.template.spec?.containers.map((c) => c.name))
        .toEqual(['controller']);
      const ts = findObject<V1Deployment>(o, 'Deployment', `${F}-token-server`);
      expect(ts.spec?.replicas).toBeUndefined();
      expect(ts.spec?.template.spec?.serviceAccountName).toBe(TOKEN_SA);
      expect(ts.spec?.template.spec?.containers.map((c) => c.name)).toEqual(['token-server']);
      expectServiceSelects(o, `${F}-token`, `${F}-token-server`);
      const hpa = findObject<V2HorizontalPodAutoscaler>(o, 'HorizontalPodAutoscaler', `${F}-token-server`);
      expect(hpa.spec).toMatchObject({ scaleTargetRef: { kind: 'Deployment', name: `${F}-token-server` }, minReplicas: 3, maxReplicas: 12 });
      expect(hpa.spec?.metrics?.[0]?.resource?.target.averageUtilization).toBe(60);
      const pdb = findObject<V1PodDisruptionBudget>(o, 'PodDisruptionBudget', `${F}-token-server`);
      expect(pdb.spec?.minAvailable).toBe(1);
      expect(ts.spec?.template.metadata?.labels).toMatchObject(pdb.spec?.selector?.matchLabels ?? { missing: 'selector' });
      for (const role of [`${F}-token-server`, `${F}-token-server-reviews`, `${F}-token-server-signing-keys`]) {
        expect(subjectsOf(o, role)).toEqual([`ServiceAccount:${NS}/${TOKEN_SA}`]);
      }
      expect(subjectsOf(o, `${F}-controller`)).toEqual([`ServiceAccount:${NS}/${CONTROLLER_SA}`]);
    },
  }],
  ['the token server as its own Deployment with three fixed replicas and no PodDisruptionBudget', {
    values: { tokenServer: { mode: 'deployment', replicas: 3, podDisruptionBudget: { enabled: false } } },
    check: (o) => {
      expect(kindCounts(o)).toEqual({ ...DEFAULT_KINDS, ServiceAccount: 2, Deployment: 2 });
      expect(findObject<V1Deployment>(o, 'Deployment', `${F}-token-server`).spec?.replicas).toBe(3);
    },
  }],
  ['watchNamespaces, which binds the namespaced rights only in those namespaces', {
    values: { watchNamespaces: ['team-a', 'team-b'] },
    check: (o) => {
      // Only the reviews (cluster-scoped by nature) keep a ClusterRoleBinding.
      expect(objectsOfKind<V1ClusterRoleBinding>(o, 'ClusterRoleBinding').map((b) => b.metadata?.name))
        .toEqual([`${F}-token-server-reviews`]);
      const bindings = objectsOfKind<V1RoleBinding>(o, 'RoleBinding').map((b) => `${b.metadata?.namespace}/${b.metadata?.name}`);
      for (const ns of ['team-a', 'team-b']) {
        expect(bindings).toContain(`${ns}/${F}-controller`);
        expect(bindings).toContain(`${ns}/${F}-token-server`);
      }
      for (const c of containersOf(o)) expect(flag(c, 'namespaces')).toBe('team-a,team-b');
    },
  }],
  ['a ServiceMonitor that scrapes the controller and the token server', {
    values: { serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'prometheus' } } },
    check: (o) => {
      const sm = findObject<{ metadata: KubeObject['metadata']; spec: {
        selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string; interval: string }[];
      } }>(o, 'ServiceMonitor', F);
      expect(sm.metadata.labels?.release).toBe('prometheus');
      expect(sm.spec.endpoints.map((e) => [e.port, e.path, e.interval])).toEqual([['metrics', '/metrics', '15s']]);
      // The endpoint's port is the metrics port of both metrics Services, and of no Service that clients reach.
      const selected = objectsOfKind<V1Service>(o, 'Service')
        .filter((s) => Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => s.metadata?.labels?.[k] === v));
      const scraped = selected.filter((s) => (s.spec?.ports ?? []).some((p) => p.name === 'metrics')).map((s) => s.metadata?.name).sort();
      expect(scraped).toEqual([`${F}-controller-metrics`, `${F}-token-metrics`]);
      const tokenPorts = findObject<V1Service>(o, 'Service', `${F}-token`).spec?.ports?.map((p) => p.name);
      expect(tokenPorts).toEqual(['http']);
      // The ApiKey metrics' namespace label names the keys' namespace, not the scraped pod's.
      expect((sm.spec.endpoints[0] as { honorLabels?: boolean }).honorLabels).toBe(true);
    },
  }],
  ['a PrometheusRule whose spec is files/prometheus-rules.yaml, the file promtool tests', {
    values: { prometheusRule: { enabled: true, labels: { release: 'prometheus' } } },
    check: (o) => {
      const rule = findObject<{ metadata: KubeObject['metadata']; spec: unknown }>(o, 'PrometheusRule', F);
      expect(rule.metadata.namespace).toBe(NS);
      expect(rule.metadata.labels?.release).toBe('prometheus');
      expect(rule.spec).toEqual(parseYaml(readFileSync(join(CHART_DIR, 'files', 'prometheus-rules.yaml'), 'utf8')));
      expect(kindCounts(o)).toEqual({ ...DEFAULT_KINDS, PrometheusRule: 1 });
    },
  }],
  ['a Grafana dashboard ConfigMap for the sidecar, holding files/grafana-dashboard.json', {
    values: { grafanaDashboard: { enabled: true, annotations: { grafana_folder: 'Platform' } } },
    check: (o) => {
      const cm = findObject<{ metadata: KubeObject['metadata'] & { annotations?: Record<string, string> }; data: Record<string, string> }>(o, 'ConfigMap', `${F}-dashboard`);
      expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
      expect(cm.metadata.annotations).toEqual({ grafana_folder: 'Platform' });
      expect(Object.keys(cm.data)).toEqual(['apikey-operator.json']);
      expect(JSON.parse(cm.data['apikey-operator.json']!)).toEqual(JSON.parse(readFileSync(join(CHART_DIR, 'files', 'grafana-dashboard.json'), 'utf8')));
    },
  }],
  ['expiry warnings of its own, or none', {
    values: { controller: { expiryWarnings: ['336h', '48h'] } },
    check: (o) => expect(flag(container(o, `${F}-controller`, 'controller'), 'expiry-warnings')).toBe('336h,48h'),
  }],
  ['no expiry warnings', {
    values: { controller: { expiryWarnings: [] } },
    check: (o) => expect(flag(container(o, `${F}-controller`, 'controller'), 'expiry-warnings')).toBe(''),
  }],
  ['NetworkPolicies that admit CI jobs to the token port, and Prometheus to the metrics ports', {
    values: { tokenServer: { mode: 'deployment' }, networkPolicy: {
      enabled: true, tokenClients: [{ namespaceSelector: { matchLabels: { ci: 'true' } } }], metricsClients: [{ podSelector: { matchLabels: { app: 'prometheus' } } }],
    } },
    check: (o) => {
      const prometheus = [{ podSelector: { matchLabels: { app: 'prometheus' } } }];
      const ctl = findObject<V1NetworkPolicy>(o, 'NetworkPolicy', `${F}-controller`);
      expect(ctl.spec?.ingress).toEqual([{ ports: [{ port: 'health', protocol: 'TCP' }], from: prometheus }]);
      const ts = findObject<V1NetworkPolicy>(o, 'NetworkPolicy', `${F}-token-server`);
      expect(ts.spec?.ingress).toEqual([
        { ports: [{ port: 'http', protocol: 'TCP' }], from: [{ namespaceSelector: { matchLabels: { ci: 'true' } } }] },
        { ports: [{ port: 'metrics', protocol: 'TCP' }], from: prometheus },
      ]);
      expect(findObject<V1Deployment>(o, 'Deployment', `${F}-token-server`).spec?.template.metadata?.labels)
        .toMatchObject(ts.spec?.podSelector?.matchLabels ?? { missing: 'selector' });
    },
  }],
  ['a NetworkPolicy of the sidecar pod with the token port open to any source and the metrics ports to Prometheus', {
    values: { networkPolicy: { enabled: true, metricsClients: [{ podSelector: { matchLabels: { app: 'prometheus' } } }] } },
    check: (o) => {
      const prometheus = [{ podSelector: { matchLabels: { app: 'prometheus' } } }];
      expect(findObject<V1NetworkPolicy>(o, 'NetworkPolicy', `${F}-controller`).spec?.ingress).toEqual([
        { ports: [{ port: 'health', protocol: 'TCP' }], from: prometheus },
        { ports: [{ port: 'http', protocol: 'TCP' }] },
        { ports: [{ port: 'metrics', protocol: 'TCP' }], from: prometheus },
      ]);
    },
  }],
  ['EdDSA signing keys rotated weekly', { values: { signing: { algorithm: 'EdDSA', rotation: '168h' } }, check: (o) => {
    const ctl = container(o, `${F}-controller`, 'controller');
    expect([flag(ctl, 'signing-algorithm'), flag(ctl, 'signing-key-rotation')]).toEqual(['EdDSA', '168h']);
  } }],
  ...(['sidecar', 'deployment'] as const).map((mode): [string, ChartCase] => [`signing keys in a PKCS#11 token, token server as a ${mode}`, {
    values: { tokenServer: { mode }, signing: { pkcs11: {
      enabled: true, module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'apikey-operator', pinSecret: { name: 'hsm-pin', key: 'user-pin' },
      volumes: [{ name: 'softhsm', persistentVolumeClaim: { claimName: 'softhsm-tokens' } }],
      volumeMounts: [{ name: 'softhsm', mountPath: '/var/lib/softhsm/tokens' }],
      env: [{ name: 'SOFTHSM2_CONF', value: '/var/lib/softhsm/tokens/softhsm2.conf' }],
    } } },
    check: (o) => {
      const pods = [[`${F}-controller`, 'controller'], [mode === 'sidecar' ? `${F}-controller` : `${F}-token-server`, 'token-server']] as const;
      for (const [deployment, name] of pods) {
        const c = container(o, deployment, name);
        expect([flag(c, 'pkcs11-module'), flag(c, 'pkcs11-token-label'), flag(c, 'pkcs11-token-serial'), flag(c, 'pkcs11-pin-file'),
          flag(c, 'pkcs11-key-label-prefix'), flag(c, 'pkcs11-sessions')])
          .toEqual(['/usr/lib/softhsm/libsofthsm2.so', 'apikey-operator', undefined, '/etc/apikey-operator/pkcs11/pin', 'apikey-operator-', '4']);
        // The PIN is a mounted file: in no argument and no environment variable.
        expect(c.env?.map((e) => e.name)).toContain('SOFTHSM2_CONF');
        expect(JSON.stringify(c.env)).not.toMatch(/hsm-pin|user-pin|PIN/);
        expect(c.volumeMounts).toEqual(expect.arrayContaining([
          { name: 'pkcs11-pin', mountPath: '/etc/apikey-operator/pkcs11', readOnly: true },
          { name: 'softhsm', mountPath: '/var/lib/softhsm/tokens' },
        ]));
        const volumes = findObject<V1Deployment>(o, 'Deployment', deployment).spec?.template.spec?.volumes ?? [];
        expect(volumes).toEqual(expect.arrayContaining([
          { name: 'pkcs11-pin', secret: { secretName: 'hsm-pin', defaultMode: 0o440, items: [{ key: 'user-pin', path: 'pin' }] } },
          { name: 'softhsm', persistentVolumeClaim: { claimName: 'softhsm-tokens' } },
        ]));
      }
    },
  }]),
  ['a switch back from a PKCS#11 token: the token servers keep it, the controller makes keys in the Secret', {
    values: { signing: { pkcs11: { enabled: true, generateKeys: false, module: '/m.so', tokenLabel: 't', pinSecret: { name: 'p', key: 'pin' } } } },
    check: (o) => {
      expect(flag(container(o, `${F}-controller`, 'controller'), 'pkcs11-module')).toBeUndefined();
      expect(flag(container(o, `${F}-controller`, 'token-server'), 'pkcs11-module')).toBe('/m.so');
    },
  }],
  ['signing keys in a PKCS#11 token chosen by serial', {
    values: { signing: { pkcs11: { enabled: true, module: '/opt/cloudhsm/lib/libcloudhsm_pkcs11.so', tokenSerial: '0123456789', pinSecret: { name: 'p', key: 'pin' } } } },
    check: (o) => {
      for (const name of ['controller', 'token-server']) {
        const c = container(o, `${F}-controller`, name);
        expect([flag(c, 'pkcs11-token-serial'), flag(c, 'pkcs11-token-label')]).toEqual(['0123456789', undefined]);
      }
    },
  }],
  ['trusted proxies for the token server', { values: { tokenServer: { trustedProxies: ['192.0.2.10', 'fd00::10/124'] } }, check: (o) => {
    expect(flag(container(o, `${F}-controller`, 'token-server'), 'trusted-proxies')).toBe('192.0.2.10,fd00::10/124');
    expect(flag(container(o, `${F}-controller`, 'token-server'), 'insecure-broad-trusted-proxies')).toBeUndefined();
    expect(flag(container(o, `${F}-controller`, 'controller'), 'trusted-proxies')).toBeUndefined();
  } }],
  ['broad trusted proxies only when asked for by name', {
    values: { tokenServer: { trustedProxies: ['10.0.0.0/8'], insecureBroadTrustedProxies: true } }, check: (o) => {
      expect(flag(container(o, `${F}-controller`, 'token-server'), 'insecure-broad-trusted-proxies')).toBe('true');
    },
  }],
  ['TokenReview audiences for the token server', { values: { tokenServer: { tokenReviewAudiences: ['apikeys.dev/token-server', 'b'] } }, check: (o) => {
    expect(flag(container(o, `${F}-controller`, 'token-server'), 'token-review-audiences')).toBe('apikeys.dev/token-server,b');
    expect(flag(container(o, `${F}-controller`, 'controller'), 'token-review-audiences')).toBeUndefined();
  } }],
  ['a bound on the token server\'s cache staleness, off by default', { values: { tokenServer: { maxCacheStaleness: '30s' } }, check: (o) => {
    expect(flag(container(o, `${F}-controller`, 'token-server'), 'max-cache-staleness')).toBe('30s');
    expect(flag(container(o, `${F}-controller`, 'controller'), 'max-cache-staleness')).toBeUndefined();
  } }],
  ['debug logging', { values: { logLevel: 'debug' }, check: (o) => {
    expect(containersOf(o).map((c) => flag(c, 'log-level'))).toEqual(['debug', 'debug']);
  } }],
  ['an explicit issuer, token URL and default audiences', {
    values: { issuerURL: 'https://auth.example.com', tokenURL: 'https://auth.example.com/oauth/token', audiences: ['airflow', 'registry'] },
    check: (o) => {
      expect(flag(container(o, `${F}-controller`, 'token-server'), 'issuer')).toBe('https://auth.example.com');
      expect(flag(container(o, `${F}-controller`, 'controller'), 'token-url')).toBe('https://auth.example.com/oauth/token');
      for (const c of containersOf(o)) expect(flag(c, 'audiences')).toBe('airflow,registry');
      // The token URL is the issuer's: DPoP proofs need no further URL.
      expect(flag(container(o, `${F}-controller`, 'token-server'), 'dpop-token-urls')).toBeUndefined();
    },
  }],
  ['a public issuer with the in-cluster token URL: DPoP proofs may name either', {
    values: { issuerURL: 'https://auth.example.com', tokenServer: { mode: 'deployment' } },
    check: (o) => {
      const ts = container(o, `${F}-token-server`, 'token-server');
      expect(flag(ts, 'issuer')).toBe('https://auth.example.com');
      const tokenURL = flag(container(o, `${F}-controller`, 'controller'), 'token-url');
      expect(tokenURL).toMatch(/^https:\/\/.*\.svc:8080\/oauth\/token$/);
      expect(flag(ts, 'dpop-token-urls')).toBe(tokenURL);
    },
  }],
  ['an image pinned by digest, pulled with a pull secret', {
    values: { image: { repository: 'registry.example.com/apikey-operator', digest: `sha256:${'a'.repeat(64)}`, pullPolicy: 'Always' }, imagePullSecrets: [{ name: 'regcred' }], tokenServer: { mode: 'deployment' } },
    check: (o) => {
      for (const c of containersOf(o)) {
        expect(c.image).toBe(`registry.example.com/apikey-operator@sha256:${'a'.repeat(64)}`);
        expect(c.imagePullPolicy).toBe('Always');
      }
      for (const { deployment } of podTemplates(o)) expect(deployment.spec?.template.spec?.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    },
  }],
  ['scheduling constraints, pod annotations and labels', {
    values: {
      tokenServer: { mode: 'deployment' }, nodeSelector: { 'kubernetes.io/os': 'linux' }, priorityClassName: 'system-cluster-critical',
      tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }], podAnnotations: { 'example.com/a': 'b' }, podLabels: { team: 'platform' },
      affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { team: 'platform' } } } }] } },
    },
    check: (o) => {
      for (const { deployment } of podTemplates(o)) {
        const t = deployment.spec?.template;
        expect(t?.spec?.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
        expect(t?.spec?.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }]);
        expect(t?.spec?.affinity?.podAntiAffinity).toBeDefined();
        expect(t?.spec?.priorityClassName).toBe('system-cluster-critical');
        expect(t?.metadata?.annotations).toEqual({ 'example.com/a': 'b' });
        expect(t?.metadata?.labels?.team).toBe('platform');
      }
    },
  }],
  ['the CRDs left to uninstall with the release (crds.keep false)', { values: { crds: { keep: false } }, check: (o) => {
    expectSourceCrds(o, undefined);
  } }],
  ['no CRDs (crds.enabled false), for a second release or CRDs managed elsewhere', { values: { crds: { enabled: false } }, check: (o) => {
    expect(kindCounts(o)).toEqual(DEFAULT_KINDS_WITHOUT_CRDS);
  } }],
  ['ServiceAccounts with their own names and workload identity annotations', {
    values: {
      tokenServer: { mode: 'deployment' },
      serviceAccount: {
        controller: { name: 'keys-controller', annotations: { 'iam.gke.io/gcp-service-account': 'ctl@project.iam.example.com' } },
        tokenServer: { name: 'keys-token-server', annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/token' } },
      },
    },
    check: (o) => {
      const sas = objectsOfKind<V1ServiceAccount>(o, 'ServiceAccount');
      expect(sas.map((a) => [a.metadata?.name, a.metadata?.annotations])).toEqual([
        ['keys-controller', { 'iam.gke.io/gcp-service-account': 'ctl@project.iam.example.com' }],
        ['keys-token-server', { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/token' }],
      ]);
      expect(findObject<V1Deployment>(o, 'Deployment', `${F}-controller`).spec?.template.spec?.serviceAccountName).toBe('keys-controller');
      expect(findObject<V1Deployment>(o, 'Deployment', `${F}-token-server`).spec?.template.spec?.serviceAccountName).toBe('keys-token-server');
      expect(subjectsOf(o, `${F}-controller`)).toEqual([`ServiceAccount:${NS}/keys-controller`]);
      expect(subjectsOf(o, `${F}-controller-operator-namespace`)).toEqual([`ServiceAccount:${NS}/keys-controller`]);
      for (const role of [`${F}-token-server`, `${F}-token-server-reviews`, `${F}-token-server-signing-keys`]) {
        expect(subjectsOf(o, role)).toEqual([`ServiceAccount:${NS}/keys-token-server`]);
      }
    },
  }],
  ['existing ServiceAccounts the chart binds its roles to but does not create', {
    values: { tokenServer: { mode: 'deployment' }, serviceAccount: { controller: { create: false, name: 'ctl' }, tokenServer: { create: false, name: 'tok' } } },
    check: (o) => {
      expect(kindCounts(o)).toEqual({ ...DEFAULT_KINDS, ServiceAccount: undefined, Deployment: 2, PodDisruptionBudget: 1 });
      expect(subjectsOf(o, `${F}-controller`)).toEqual([`ServiceAccount:${NS}/ctl`]);
      expect(subjectsOf(o, `${F}-token-server`)).toEqual([`ServiceAccount:${NS}/tok`]);
      expect(findObject<V1Deployment>(o, 'Deployment', `${F}-token-server`).spec?.template.spec?.serviceAccountName).toBe('tok');
    },
  }],
  ['a sidecar token server with a ServiceAccount of its own name, whose token the controller may request and no other', {
    values: { serviceAccount: { controller: { name: 'ctl' }, tokenServer: { name: 'tok', annotations: { a: 'b' } } } },
    check: (o) => {
      expect(objectsOfKind<V1ServiceAccount>(o, 'ServiceAccount').map((a) => a.metadata?.name)).toEqual(['ctl', 'tok']);
      expect(subjectsOf(o, `${F}-controller`)).toEqual([`ServiceAccount:${NS}/ctl`]);
      for (const role of [`${F}-token-server`, `${F}-token-server-reviews`, `${F}-token-server-signing-keys`]) {
        expect(subjectsOf(o, role)).toEqual([`ServiceAccount:${NS}/tok`]);
      }
      expect(flag(container(o, `${F}-controller`, 'controller'), 'token-server-service-account')).toBe('tok');
      expect(findObject<V1Role>(o, 'Role', `${F}-controller-operator-namespace`).rules).toContainEqual(
        { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['tok'], verbs: ['create'] });
    },
  }],
  ['extra arguments and environment for each program, after the chart\'s own', {
    values: {
      controller: {
        extraArgs: ['--resync=1h', '--leader-elect-lease-duration=30s', '--workers=16'],
        extraEnv: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=400' }],
      },
      tokenServer: {
        extraArgs: ['--user-token-ttl=15m'],
        extraEnv: [{ name: 'APIKEY_OPERATOR_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
      },
    },
    check: (o) => {
      const ctl = container(o, `${F}-controller`, 'controller');
      const ts = container(o, `${F}-controller`, 'token-server');
      expect(ctl.args?.slice(-3)).toEqual(['--resync=1h', '--leader-elect-lease-duration=30s', '--workers=16']);
      // Given twice: the programs take the last one.
      expect(ctl.args?.filter((a) => a.startsWith('--workers='))).toEqual(['--workers=4', '--workers=16']);
      expect(ts.args?.at(-1)).toBe('--user-token-ttl=15m');
      expect(ctl.env?.map((e) => e.name)).toEqual(['POD_NAME', 'POD_NAMESPACE', 'NODE_OPTIONS']);
      expect(ts.env?.at(-1)).toEqual({ name: 'APIKEY_OPERATOR_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
    },
  }],
  ['the token server\'s extra arguments in its own Deployment', {
    values: { tokenServer: { mode: 'deployment', extraArgs: ['--trusted-proxies=10.0.0.0/8'] } },
    check: (o) => {
      expect(container(o, `${F}-token-server`, 'token-server').args?.at(-1)).toBe('--trusted-proxies=10.0.0.0/8');
      expect(container(o, `${F}-controller`, 'controller').args).not.toContain('--trusted-proxies=10.0.0.0/8');
    },
  }],
  ['extra volumes in every pod, mounted into every container', {
    values: {
      tokenServer: { mode: 'deployment' },
      volumes: [{ name: 'ca', configMap: { name: 'corporate-ca' } }],
      volumeMounts: [{ name: 'ca', mountPath: '/etc/ssl/corporate', readOnly: true }],
    },
    check: (o) => {
      for (const { deployment } of podTemplates(o)) {
        // The token server's pod also has its TLS Secret (TLS by default).
        const tls = deployment.metadata?.name === `${F}-token-server` ? ['token-tls'] : [];
        expect(volumesOf(deployment).volumes).toEqual(['tmp', ...tls, 'ca']);
        for (const mounts of volumesOf(deployment).mounts) {
          expect(mounts.filter((m) => !m.startsWith('token-tls:'))).toEqual(['tmp:/tmp', 'ca:/etc/ssl/corporate']);
        }
      }
      expect(findObject<V1Deployment>(o, 'Deployment', `${F}-controller`).spec?.template.spec?.volumes?.[1])
        .toEqual({ name: 'ca', configMap: { name: 'corporate-ca' } });
    },
  }],
  ['topology spread constraints, which spread each component on its own unless they select pods themselves', {
    values: {
      tokenServer: { mode: 'deployment' },
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', matchLabelKeys: ['pod-template-hash'] },
        { maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { team: 'platform' } } },
      ],
    },
    check: (o) => {
      for (const name of [`${F}-controller`, `${F}-token-server`]) {
        const t = findObject<V1Deployment>(o, 'Deployment', name).spec?.template;
        const [own, given] = t?.spec?.topologySpreadConstraints ?? [];
        expect(own).toMatchObject({ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', matchLabelKeys: ['pod-template-hash'] });
        expect(own?.labelSelector?.matchLabels?.['app.kubernetes.io/component']).toBe(name.slice(F.length + 1));
        expect(t?.metadata?.labels).toMatchObject(own?.labelSelector?.matchLabels ?? { missing: 'selector' });
        expect(given?.labelSelector).toEqual({ matchLabels: { team: 'platform' } });
      }
    },
  }],
  ['no node selector, the linux default dropped', { values: { nodeSelector: { 'kubernetes.io/os': null } }, check: (o) => {
    for (const { deployment } of podTemplates(o)) expect(deployment.spec?.template.spec?.nodeSelector).toBeUndefined();
  } }],
  ['common labels on every object and every pod', {
    values: { tokenServer: { mode: 'deployment' }, serviceMonitor: { enabled: true }, networkPolicy: { enabled: true }, global: { commonLabels: { team: 'platform', 'cost-center': 'cc-42' } } },
    check: (o) => {
      expect(o.length).toBeGreaterThan(20);
      for (const obj of o) expect(obj.metadata.labels, `${obj.kind} ${obj.metadata.name}`).toMatchObject({ team: 'platform', 'cost-center': 'cc-42' });
      for (const { deployment } of podTemplates(o)) {
        expect(deployment.spec?.template.metadata?.labels).toMatchObject({ team: 'platform', 'cost-center': 'cc-42' });
        // Selectors stay the chart's own: a label added later cannot orphan the pods.
        expect(Object.keys(deployment.spec?.selector.matchLabels ?? {})).not.toContain('team');
      }
    },
  }],
  ['two controllers with a PodDisruptionBudget', { values: { controller: { replicas: 2, podDisruptionBudget: { enabled: true } } }, check: (o) => {
    expect(kindCounts(o)).toEqual({ ...DEFAULT_KINDS, PodDisruptionBudget: 1 });
    const pdb = findObject<V1PodDisruptionBudget>(o, 'PodDisruptionBudget', `${F}-controller`);
    expect(pdb.spec?.minAvailable).toBe(1);
    expect(findObject<V1Deployment>(o, 'Deployment', `${F}-controller`).spec?.template.metadata?.labels)
      .toMatchObject(pdb.spec?.selector?.matchLabels ?? { missing: 'selector' });
  } }],
  ['a CPU limit, for clusters whose policy demands one', {
    values: { controller: { resources: { limits: { cpu: '2' } } }, tokenServer: { resources: { limits: { cpu: '1500m' } } } },
    check: (o) => {
      expect(container(o, `${F}-controller`, 'controller').resources?.limits).toEqual({ cpu: '2', memory: '512Mi' });
      expect(container(o, `${F}-controller`, 'token-server').resources?.limits).toEqual({ cpu: '1500m', memory: '512Mi' });
    },
  }],
  ['three controller replicas with leader election', { values: { controller: { replicas: 3, workers: 8 } }, check: (o) => {
    expect(findObject<V1Deployment>(o, 'Deployment', `${F}-controller`).spec?.replicas).toBe(3);
    expect(flag(container(o, `${F}-controller`, 'controller'), 'workers')).toBe('8');
  } }],
  ['the admission policies of the default values: key permissions need token rights everywhere; the sidecar token server writes only lastUsedAt', {
    values: {},
    check: (o) => {
      const { policy, binding } = policyOf(o, `${F}-apikey-permissions`);
      expect(policy.spec?.matchConstraints?.resourceRules).toEqual([
        { apiGroups: ['apikeys.dev'], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['apikeys', 'federatedcredentials'] }]);
      expect(binding.spec?.matchResources).toBeUndefined();
      // The sidecar runs as its own ServiceAccount, so its policy applies in sidecar mode too.
      expect(policyOf(o, `${F}-token-server-writes`).policy.spec?.matchConditions).toEqual([
        { name: 'token-server', expression: `request.userInfo.username == 'system:serviceaccount:${NS}:${TOKEN_SA}'` }]);
      // Statuses: the operator's two accounts alone, wherever the release watches.
      const status = policyOf(o, `${F}-status-writes`);
      expect(status.policy.spec?.matchConstraints?.resourceRules?.[0]?.resources)
        .toEqual(['apikeys/status', 'deployments/status', 'federatedcredentials/status']);
      expect(status.policy.spec?.matchConditions?.[0]?.expression).toContain(`'system:serviceaccount:${NS}:${TOKEN_SA}'`);
      expect(status.binding.spec?.matchResources).toBeUndefined();
      // AudienceClaims: the controller alone, in the release's namespace, where they live.
      const claims = policyOf(o, `${F}-audience-claims`);
      expect(claims.policy.spec?.matchConstraints?.resourceRules?.[0]?.resources).toEqual(['audienceclaims', 'audienceclaims/*']);
      expect(claims.binding.spec?.matchResources?.namespaceSelector?.matchExpressions).toEqual([
        { key: 'kubernetes.io/metadata.name', operator: 'In', values: [NS] }]);
    },
  }],
  ['the token server\'s admission policy, which names its own ServiceAccount', {
    values: { tokenServer: { mode: 'deployment' }, serviceAccount: { tokenServer: { create: false, name: 'tok' } } },
    check: (o) => {
      const { policy } = policyOf(o, `${F}-token-server-writes`);
      expect(policy.spec?.matchConditions).toEqual([
        { name: 'token-server', expression: `request.userInfo.username == 'system:serviceaccount:${NS}:tok'` }]);
      expect(policy.spec?.matchConstraints?.resourceRules?.[0]?.resources)
        .toEqual(['apikeys', 'apikeys/status', 'federatedcredentials', 'federatedcredentials/status']);
      policyOf(o, `${F}-apikey-permissions`);
    },
  }],
  ['federation off by default: neither program gets --federation-issuers, and no CA is mounted', { values: {}, check: (o) => {
    for (const c of containersOf(o)) expect(flag(c, 'federation-issuers'), c.name).toBeUndefined();
    expect(o.filter((x) => x.kind === 'ConfigMap')).toEqual([]);
  } }],
  ...(['sidecar', 'deployment'] as const).map((mode): [string, ChartCase] => [`federation in ${mode} mode: one issuer list for both programs, the CA for the token server`, {
    values: { tokenServer: { mode }, federation: { issuers: ['https://token.actions.githubusercontent.com', 'https://gitlab.example.com'], caBundle: FEDERATION_CA } },
    check: (o) => {
      const tokenServer = container(o, mode === 'sidecar' ? `${F}-controller` : `${F}-token-server`, 'token-server');
      const issuers = 'https://token.actions.githubusercontent.com,https://gitlab.example.com';
      expect(flag(container(o, `${F}-controller`, 'controller'), 'federation-issuers')).toBe(issuers);
      expect(flag(tokenServer, 'federation-issuers')).toBe(issuers);
      expect(flag(tokenServer, 'federation-ca-file')).toBe('/etc/apikey-operator/federation-ca/ca.crt');
      expect(tokenServer.volumeMounts).toContainEqual({ name: 'federation-ca', mountPath: '/etc/apikey-operator/federation-ca', readOnly: true });
      expect(flag(container(o, `${F}-controller`, 'controller'), 'federation-ca-file')).toBeUndefined();
      const ca = findObject<{ data: Record<string, string> } & KubeObject>(o, 'ConfigMap', `${F}-federation-ca`);
      expect(ca.data['ca.crt']).toBe(FEDERATION_CA);
      const pod = findObject<V1Deployment>(o, 'Deployment', mode === 'sidecar' ? `${F}-controller` : `${F}-token-server`).spec?.template.spec;
      expect(pod?.volumes).toContainEqual({ name: 'federation-ca', configMap: { name: `${F}-federation-ca` } });
    },
  }]),
  ...(['sidecar', 'deployment'] as const).map((mode): [string, ChartCase] => [`private federation issuers in ${mode} mode: JWKS inline, from a ConfigMap and from a Secret, in one projected volume of the token server`, {
    values: { tokenServer: { mode }, federation: { privateIssuers: [
      { issuer: 'https://gitlab.internal.example', jwks: PRIVATE_JWKS },
      { issuer: 'https://127.0.0.1:6443/', jwksFrom: { configMapKeyRef: { name: 'cluster-b-jwks', key: 'jwks.json' } } },
      { issuer: 'https://jenkins.internal.example/oidc', jwksFrom: { secretKeyRef: { name: 'jenkins-jwks', key: 'jwks' } } },
    ] } },
    check: (o) => {
      const tokenServer = container(o, mode === 'sidecar' ? `${F}-controller` : `${F}-token-server`, 'token-server');
      const dir = '/etc/apikey-operator/federation-jwks';
      const pairs = `https://gitlab.internal.example=${dir}/issuer-0.json,https://127.0.0.1:6443/=${dir}/issuer-1.json,`
        + `https://jenkins.internal.example/oidc=${dir}/issuer-2.json`;
      expect(flag(tokenServer, 'federation-issuer-jwks')).toBe(pairs);
      // The controller allows the same issuers and mounts nothing: it never reads the files.
      const ctl = container(o, `${F}-controller`, 'controller');
      expect(flag(ctl, 'federation-issuer-jwks')).toBe(pairs);
      expect(ctl.volumeMounts?.map((m) => m.name)).not.toContain('federation-jwks');
      expect(tokenServer.volumeMounts).toContainEqual({ name: 'federation-jwks', mountPath: dir, readOnly: true });
      const inline = findObject<{ data: Record<string, string> } & KubeObject>(o, 'ConfigMap', `${F}-federation-jwks`);
      expect(inline.data).toEqual({ 'issuer-0.json': PRIVATE_JWKS });
      const pod = findObject<V1Deployment>(o, 'Deployment', mode === 'sidecar' ? `${F}-controller` : `${F}-token-server`).spec?.template.spec;
      expect(pod?.volumes).toContainEqual({ name: 'federation-jwks', projected: { sources: [
        { configMap: { name: `${F}-federation-jwks`, items: [{ key: 'issuer-0.json', path: 'issuer-0.json' }] } },
        { configMap: { name: 'cluster-b-jwks', items: [{ key: 'jwks.json', path: 'issuer-1.json' }] } },
        { secret: { name: 'jenkins-jwks', items: [{ key: 'jwks', path: 'issuer-2.json' }] } },
      ] } });
    },
  }]),
  ['watchNamespaces, which the key permissions policy is bound to and nothing else', {
    values: { watchNamespaces: ['team-a', 'team-b'] },
    check: (o) => {
      expect(policyOf(o, `${F}-apikey-permissions`).binding.spec?.matchResources?.namespaceSelector).toEqual({
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['team-a', 'team-b'] }],
      });
    },
  }],
  ['no admission policies', { values: { admissionPolicy: { enabled: false }, tokenServer: { mode: 'deployment' } }, check: (o) => {
    expect(kindCounts(o)).toEqual({
      ...DEFAULT_KINDS, ServiceAccount: 2, Deployment: 2, PodDisruptionBudget: 1,
      ValidatingAdmissionPolicy: undefined, ValidatingAdmissionPolicyBinding: undefined,
    });
  } }],
  ['TLS from an existing Secret: HTTPS on the token port, probes and TOKEN_URL included', {
    values: { tokenServer: { tls: { enabled: true, secretName: 'token-tls' } } },
    check: (o) => {
      const ts = container(o, `${F}-controller`, 'token-server');
      const ctl = container(o, `${F}-controller`, 'controller');
      expect(flag(ts, 'tls-cert-file')).toBe('/etc/apikey-operator/tls/tls.crt');
      expect(flag(ts, 'tls-private-key-file')).toBe('/etc/apikey-operator/tls/tls.key');
      expect(ts.volumeMounts).toContainEqual({ name: 'token-tls', mountPath: '/etc/apikey-operator/tls', readOnly: true });
      expect(ctl.volumeMounts?.map((m) => m.name)).not.toContain('token-tls');
      const pod = findObject<V1Deployment>(o, 'Deployment', `${F}-controller`).spec?.template.spec;
      expect(pod?.volumes?.find((v) => v.name === 'token-tls')?.secret?.secretName).toBe('token-tls');
      expect(ts.readinessProbe?.httpGet?.scheme).toBe('HTTPS');
      expect(ts.livenessProbe?.httpGet?.scheme).toBe('HTTPS');
      expect(flag(ctl, 'token-url')).toBe(`https://${F}-token.${NS}.svc:8080/oauth/token`);
      expect(flag(ts, 'issuer')).toBe(`https://${F}-token.${NS}.svc:8080`);
      expect(findObject<V1Service>(o, 'Service', `${F}-token`).spec?.ports?.[0]?.appProtocol).toBe('https');
      expect(objectsOfKind(o, 'Certificate')).toHaveLength(0);
    },
  }],
  ['TLS from a cert-manager Certificate for the Service\'s names and the ingress host, in deployment mode', {
    values: {
      tokenServer: {
        mode: 'deployment',
        tls: { enabled: true, certManager: { enabled: true, issuerRef: { name: 'internal-ca', kind: 'ClusterIssuer' }, dnsNames: ['tokens.internal'] } },
        ingress: { enabled: true, className: 'nginx', host: 'apikeys.example.com', tls: [{ secretName: 'public-tls', hosts: ['apikeys.example.com'] }] },
      },
    },
    check: (o) => {
      const cert = findObject<{ spec: { secretName: string; issuerRef: object; dnsNames: string[] } }>(o, 'Certificate', `${F}-token`);
      expect(cert.spec.secretName).toBe(`${F}-token-tls`);
      expect(cert.spec.issuerRef).toEqual({ name: 'internal-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
      expect(cert.spec.dnsNames).toEqual([`${F}-token`, `${F}-token.${NS}`, `${F}-token.${NS}.svc`, `${F}-token.${NS}.svc.cluster.local`,
        'apikeys.example.com', 'tokens.internal']);
      const pod = findObject<V1Deployment>(o, 'Deployment', `${F}-token-server`).spec?.template.spec;
      expect(pod?.volumes?.find((v) => v.name === 'token-tls')?.secret?.secretName).toBe(`${F}-token-tls`);
      // Tokens name the public URL, where verifiers outside the cluster fetch the JWKS.
      expect(flag(container(o, `${F}-token-server`, 'token-server'), 'issuer')).toBe('https://apikeys.example.com');
      const ing = findObject<{ spec: { ingressClassName: string; rules: { host: string; http: { paths: { backend: { service: object } }[] } }[] } }>(
        o, 'Ingress', `${F}-token`);
      expect(ing.spec.ingressClassName).toBe('nginx');
      expect(ing.spec.rules[0]!.host).toBe('apikeys.example.com');
      expect(ing.spec.rules[0]!.http.paths[0]!.backend.service).toEqual({ name: `${F}-token`, port: { name: 'http' } });
    },
  }],
  ['a Gateway API HTTPRoute, whose first hostname becomes the issuer', {
    values: { tokenServer: { httpRoute: { enabled: true, parentRefs: [{ name: 'public', namespace: 'gateways' }], hostnames: ['keys.example.com'] } } },
    check: (o) => {
      const route = findObject<{ spec: { parentRefs: object[]; hostnames: string[]; rules: { backendRefs: object[] }[] } }>(o, 'HTTPRoute', `${F}-token`);
      expect(route.spec.parentRefs).toEqual([{ name: 'public', namespace: 'gateways' }]);
      expect(route.spec.hostnames).toEqual(['keys.example.com']);
      expect(route.spec.rules[0]!.backendRefs).toEqual([{ name: `${F}-token`, port: 8080 }]);
      expect(flag(container(o, `${F}-controller`, 'token-server'), 'issuer')).toBe('https://keys.example.com');
      // TOKEN_URL stays the in-cluster Service: in-cluster jobs need no way out.
      expect(flag(container(o, `${F}-controller`, 'controller'), 'token-url')).toBe(`https://${F}-token.${NS}.svc:8080/oauth/token`);
    },
  }],
  ['no roles for people', { values: { rbac: { userRoles: { enabled: false } } }, check: (o) => {
    expect(kindCounts(o)).toEqual({ ...DEFAULT_KINDS, ClusterRole: 4 });
  } }],
  ['the console in in-cluster mode, with an Ingress and a CA for its identity provider', { values: CONSOLE_VALUES, check: (o) => {
    expect(kindCounts(o)).toEqual({ ...DEFAULT_KINDS, ServiceAccount: 3, Deployment: 2, Service: 4, Ingress: 1, Role: 3, RoleBinding: 3 });
    const d = findObject<V1Deployment>(o, 'Deployment', `${F}-console`);
    const pod = d.spec?.template.spec;
    expect(pod?.serviceAccountName).toBe(CONSOLE_SA);
    expect(findObject<V1ServiceAccount>(o, 'ServiceAccount', CONSOLE_SA).metadata?.annotations).toEqual({ 'iam.example.com/role': 'console' });
    // One right of its own: its sign-out list, a ConfigMap named in the rule; every other call is made with
    // the signed-in person's ID token. Its token is mounted where a ServiceAccount's would be, with the CA.
    expect(subjectsOfServiceAccount(o, CONSOLE_SA)).toEqual([`${F}-console`]);
    expect(findObject<{ rules: object[] }>(o, 'Role', `${F}-console`).rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['apikey-operator-console-sign-outs'], verbs: ['get', 'list', 'watch', 'patch'] }]);
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(pod?.volumes?.find((v) => v.name === 'kube-root-ca')?.projected?.sources).toEqual([
      { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } }]);
    // The session keys the controller keeps (it makes the Secret after install: optional until then).
    expect(pod?.volumes?.find((v) => v.name === 'session-keys')?.secret).toEqual({ secretName: 'apikey-operator-console-session-keys', optional: true });
    const ctl = container(o, `${F}-controller`, 'controller');
    expect(['console-sessions', 'console-session-lifetime', 'console-session-key-rotation'].map((n) => flag(ctl, n))).toEqual(['true', '8h', '24h']);
    expect(pod?.volumes?.find((v) => v.name === 'oidc-client-secret')?.secret).toEqual(
      { secretName: 'console-oidc', items: [{ key: 'secret', path: 'client-secret' }] });
    expect(pod?.volumes?.find((v) => v.name === 'oidc-ca')?.configMap).toEqual({ name: 'idp-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] });
    const c = container(o, `${F}-console`, 'console');
    expect(c.args?.[0]).toBe('console');
    expect(Object.fromEntries(['host', 'port', 'public-url', 'oidc-issuer-url', 'oidc-client-id', 'oidc-client-secret-file', 'oidc-ca-file',
      'oidc-scopes', 'token-url', 'namespace', 'log-level', 'session-keys-file', 'session-lifetime', 'session-idle-timeout', 'sign-outs-configmap',
    ].map((n) => [n, flag(c, n)]))).toEqual({
      host: '0.0.0.0', port: '8080', 'public-url': 'https://console.example.com', 'oidc-issuer-url': 'https://idp.example.com/realms/k8s',
      'oidc-client-id': 'apikey-console', 'oidc-client-secret-file': '/etc/apikey-operator/oidc/client-secret',
      'oidc-ca-file': '/etc/apikey-operator/oidc-ca/ca.crt', 'oidc-scopes': 'openid,email,groups',
      'token-url': `https://${F}-token.${NS}.svc:8080/oauth/token`, namespace: 'team-a', 'log-level': 'info',
      'session-keys-file': '/etc/apikey-operator/session-keys/keys.json', 'session-lifetime': '8h', 'session-idle-timeout': '1h',
      'sign-outs-configmap': 'apikey-operator-console-sign-outs',
    });
    // The client secret is a mounted file, never an argument or an environment variable.
    expect(JSON.stringify([c.args, c.env])).not.toContain('console-oidc');
    expect(c.args?.slice(-1)).toEqual(['--session-note=extra']);
    expect(c.env?.map((e) => e.name)).toEqual(['POD_NAME', 'POD_NAMESPACE', 'EXTRA']);
    expect(c.volumeMounts).toEqual([
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'kube-root-ca', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
      { name: 'oidc-client-secret', mountPath: '/etc/apikey-operator/oidc', readOnly: true },
      { name: 'session-keys', mountPath: '/etc/apikey-operator/session-keys', readOnly: true },
      { name: 'oidc-ca', mountPath: '/etc/apikey-operator/oidc-ca', readOnly: true },
    ]);
    expect(c.resources).toEqual({ requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } });
    expect(pod?.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod?.topologySpreadConstraints).toEqual([{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'apikey-operator', 'app.kubernetes.io/instance': RELEASE, 'app.kubernetes.io/component': 'console' } } }]);
    expectServiceSelects(o, `${F}-console`, `${F}-console`);
    expect(findObject<V1Service>(o, 'Service', `${F}-console`).spec?.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
    const ing = findObject<V1Ingress>(o, 'Ingress', `${F}-console`);
    expect(ing.spec).toMatchObject({ ingressClassName: 'nginx', tls: [{ secretName: 'console-tls', hosts: ['console.example.com'] }] });
    expect(ing.spec?.rules?.[0]).toMatchObject({ host: 'console.example.com', http: { paths: [{ path: '/', backend: { service: { name: `${F}-console`, port: { name: 'http' } } } }] } });
    // The other components are untouched: the controller still mounts its own token.
    expect(findObject<V1Deployment>(o, 'Deployment', `${F}-controller`).spec?.template.spec?.volumes?.map((v) => v.name)).not.toContain('kube-root-ca');
  } }],
  ['the console with a public URL of its own, and a NetworkPolicy admitting only its port', {
    values: {
      console: { enabled: true, publicURL: 'http://127.0.0.1:8080/', tokenURL: 'https://keys.example.com/oauth/token',
        oidc: { issuerURL: 'https://idp.example.com', clientID: 'c', clientSecret: { existingSecret: 's' } } },
      networkPolicy: { enabled: true },
    },
    check: (o) => {
      const c = container(o, `${F}-console`, 'console');
      expect(flag(c, 'public-url')).toBe('http://127.0.0.1:8080');
      expect(flag(c, 'token-url')).toBe('https://keys.example.com/oauth/token');
      expect(flag(c, 'oidc-ca-file')).toBeUndefined();
      expect(flag(c, 'namespace')).toBeUndefined();
      expect(flag(c, 'oidc-scopes')).toBe('openid,email,profile');
      expect(objectsOfKind(o, 'Ingress')).toEqual([]);
      const np = findObject<V1NetworkPolicy>(o, 'NetworkPolicy', `${F}-console`);
      expect(np.spec?.ingress).toEqual([{ ports: [{ port: 'http', protocol: 'TCP' }] }]);
      expect(np.spec?.podSelector?.matchLabels?.['app.kubernetes.io/component']).toBe('console');
    },
  }],
  ['a fullnameOverride, which every name, cluster-scoped ones included, starts with (but the CRDs\', which Kubernetes fixes)', { values: { fullnameOverride: 'keys' }, check: (o) => {
    for (const obj of o.filter((x) => x.kind !== 'CustomResourceDefinition')) expect(obj.metadata.name).toMatch(/^keys(-|$)/);
  } }],
];

/** The restricted Pod Security Standard, and what the kubelet needs to manage the containers. */
function expectHardened(objects: KubeObject[]): void {
  for (const sa of objectsOfKind<V1ServiceAccount>(objects, 'ServiceAccount')) expect(sa.automountServiceAccountToken).toBe(false);
  const templates = podTemplates(objects);
  expect(templates.length).toBeGreaterThan(0);
  for (const { deployment } of templates) {
    const pod = deployment.spec?.template.spec;
    // A pod with one identity mounts it; the sidecar pod mounts each container's own (see the default case);
    // the console's mounts its own through a projected volume (it uses it for its sign-out list only).
    const sidecarPod = (pod?.containers.length ?? 0) > 1;
    const console = pod?.containers[0]?.name === 'console';
    expect(pod?.automountServiceAccountToken).toBe(!sidecarPod && !console);
    expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    for (const c of pod?.containers ?? []) {
      expect(c.securityContext, c.name).toEqual({
        runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
      });
      expect([typeof c.resources?.requests?.cpu, typeof c.resources?.requests?.memory], c.name).toEqual(['string', 'string']);
      expect(typeof c.resources?.limits?.memory, c.name).toBe('string');
      const ports = (c.ports ?? []).map((p) => p.name);
      expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(ports).toContain(c.livenessProbe?.httpGet?.port);
      expect(ports).toContain(c.readinessProbe?.httpGet?.port);
    }
  }
}

describe('the Helm chart', () => {
  it.each(CASES)('lints strictly, renders and takes effect with %s', async (_name, { values, check }) => {
    const lint = await helm(['lint', '--strict', CHART_DIR, '--namespace', NS], values);
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
    const objects = await renderChart(RELEASE, NS, values);
    check(objects);
    expectHardened(objects);
    for (const o of objects) expect(o.metadata.labels?.['app.kubernetes.io/instance']).toBe(RELEASE);
  });

  it.each([
    ['an unknown token server mode', { tokenServer: { mode: 'banana' } }, '/tokenServer/mode'],
    ['an unsupported signing algorithm', { signing: { algorithm: 'RS256' } }, '/signing/algorithm'],
    ['an unknown log level', { logLevel: 'verbose' }, '/logLevel'],
    ['a rotation period in days, which the programs do not parse', { signing: { rotation: '30d' } }, '/signing/rotation'],
    ['PKCS#11 signing without a module', { signing: { pkcs11: { enabled: true, tokenLabel: 't', pinSecret: { name: 'p', key: 'pin' } } } },
      'signing.pkcs11.module must be the path of the PKCS#11 library'],
    ['PKCS#11 signing with both a token label and a serial', { signing: { pkcs11: { enabled: true, module: '/m.so', tokenLabel: 't', tokenSerial: '1',
      pinSecret: { name: 'p', key: 'pin' } } } }, 'signing.pkcs11 needs exactly one of tokenLabel and tokenSerial'],
    ['PKCS#11 signing without the PIN\'s Secret', { signing: { pkcs11: { enabled: true, module: '/m.so', tokenLabel: 't' } } },
      'signing.pkcs11.pinSecret.name must name the Secret holding the PIN'],
    ['a PKCS#11 key label prefix with a space', { signing: { pkcs11: { keyLabelPrefix: 'a b' } } }, '/signing/pkcs11/keyLabelPrefix'],
    ['a value the chart does not have', { tokenServer: { replicaCount: 3 } }, 'replicaCount'],
    ['zero controller replicas', { controller: { replicas: 0 } }, '/controller/replicas'],
    ['an issuer that is not an http(s) URL', { issuerURL: 'auth.example.com' }, '/issuerURL'],
    ['a watched namespace that is not a valid name', { watchNamespaces: ['Team_A'] }, '/watchNamespaces/0'],
    ['a CPU target above 100%', { tokenServer: { autoscaling: { targetCPUUtilizationPercentage: 150 } } }, '/tokenServer/autoscaling'],
    ['a string where a number belongs', { controller: { workers: 'four' } }, '/controller/workers'],
    ['several controller replicas without leader election', { controller: { replicas: 2, leaderElect: false } }, 'leaderElect'],
    ['an existing controller ServiceAccount without a name', { serviceAccount: { controller: { create: false } } },
      'serviceAccount.controller.name must name an existing ServiceAccount'],
    ['an existing token server ServiceAccount without a name', { tokenServer: { mode: 'deployment' }, serviceAccount: { tokenServer: { create: false } } },
      'serviceAccount.tokenServer.name must name an existing ServiceAccount'],
    ['a common label that would replace one of the chart\'s own', { global: { commonLabels: { 'app.kubernetes.io/name': 'x' } } },
      "invalid propertyName 'app.kubernetes.io/name'"],
    ['an extra argument that is not a string', { controller: { extraArgs: [3] } }, '/controller/extraArgs/0'],
    ['a private issuer with both an inline JWKS and one from an object', { federation: { privateIssuers: [
      { issuer: 'https://a.example', jwks: '{"keys":[]}', jwksFrom: { secretKeyRef: { name: 's', key: 'k' } } }] } }, '/federation/privateIssuers/0'],
    ['a private issuer without its JWKS', { federation: { privateIssuers: [{ issuer: 'https://a.example' }] } }, '/federation/privateIssuers/0'],
    ['a private issuer that is not https', { federation: { privateIssuers: [{ issuer: 'http://a.example', jwks: '{}' }] } }, '/federation/privateIssuers/0/issuer'],
    ['a private issuer\'s JWKS from a Secret key without a name', { federation: { privateIssuers: [
      { issuer: 'https://a.example', jwksFrom: { secretKeyRef: { key: 'k' } } }] } }, '/federation/privateIssuers/0/jwksFrom'],
    ['a cache staleness bound in days, which the token server does not parse', { tokenServer: { maxCacheStaleness: '1d' } }, '/tokenServer/maxCacheStaleness'],
    ['an expiry warning in days, which the controller does not parse', { controller: { expiryWarnings: ['30d'] } }, '/controller/expiryWarnings/0'],
    ['a PrometheusRule setting that is not a boolean', { prometheusRule: { enabled: 'yes' } }, '/prometheusRule/enabled'],
    ['a dashboard label that is not a string', { grafanaDashboard: { labels: { grafana_dashboard: 1 } } }, '/grafanaDashboard/labels/grafana_dashboard'],
    ['an extra environment variable without a name', { tokenServer: { extraEnv: [{ value: 'x' }] } }, '/tokenServer/extraEnv/0'],
    ['a volume mount without a path', { volumeMounts: [{ name: 'ca' }] }, '/volumeMounts/0'],
    ['a topology spread constraint without a topology key', { topologySpreadConstraints: [{ maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule' }] }, '/topologySpreadConstraints/0'],
    ['a controller PodDisruptionBudget that one replica cannot satisfy', { controller: { podDisruptionBudget: { enabled: true } } },
      'controller.podDisruptionBudget.minAvailable (1) must be below controller.replicas (1)'],
    ['a CRD setting that is not a boolean', { crds: { keep: 'yes' } }, '/crds/keep'],
    ['cert-manager TLS without an issuer', { tokenServer: { tls: { enabled: true, certManager: { enabled: true } } } },
      'tokenServer.tls.certManager.issuerRef.name must name a cert-manager Issuer or ClusterIssuer'],
    ['an Ingress without a host', { tokenServer: { ingress: { enabled: true } } }, 'tokenServer.ingress.host must be set'],
    ['an HTTPRoute without a Gateway', { tokenServer: { httpRoute: { enabled: true } } }, 'tokenServer.httpRoute.parentRefs must name the Gateway'],
    ['an admission policy setting that is not a boolean', { admissionPolicy: { enabled: 'no' } }, '/admissionPolicy/enabled'],
    ['a console without its issuer', { console: { enabled: true, publicURL: 'https://c.example.com', oidc: { clientID: 'c', clientSecret: { existingSecret: 's' } } } },
      'console.oidc.issuerURL must be set'],
    ['a console whose issuer is not https', { console: { enabled: true, oidc: { issuerURL: 'http://idp.example.com' } } }, '/console/oidc/issuerURL'],
    ['a console without its client id', { console: { enabled: true, publicURL: 'https://c.example.com', oidc: { issuerURL: 'https://idp.example.com', clientSecret: { existingSecret: 's' } } } },
      'console.oidc.clientID must be set'],
    ['a console without the Secret of its client secret', { console: { enabled: true, publicURL: 'https://c.example.com', oidc: { issuerURL: 'https://idp.example.com', clientID: 'c' } } },
      'console.oidc.clientSecret.existingSecret must name a Secret'],
    ['a console without a public URL or an Ingress host', { console: { enabled: true, oidc: { issuerURL: 'https://idp.example.com', clientID: 'c', clientSecret: { existingSecret: 's' } } } },
      'console.publicURL must be set'],
    ['a console Ingress without a host', { console: { enabled: true, publicURL: 'https://c.example.com', ingress: { enabled: true },
      oidc: { issuerURL: 'https://idp.example.com', clientID: 'c', clientSecret: { existingSecret: 's' } } } }, 'console.ingress.host must be set'],
    ['an existing console ServiceAccount without a name', { console: { enabled: true, publicURL: 'https://c.example.com',
      oidc: { issuerURL: 'https://idp.example.com', clientID: 'c', clientSecret: { existingSecret: 's' } } }, serviceAccount: { console: { create: false } } },
    'serviceAccount.console.name must name an existing ServiceAccount'],
    ['an autoscaler whose maximum is below its minimum', {
      tokenServer: { mode: 'deployment', autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 2 } },
    }, 'maxReplicas'],
  ])('refuses %s', async (_name, values, message) => {
    const r = await helm(['template', RELEASE, CHART_DIR, '--namespace', NS], values);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it('refuses its admission policies on Kubernetes 1.29, which has no ValidatingAdmissionPolicy v1, and installs there without them', async () => {
    const refused = await helm(['template', RELEASE, CHART_DIR, '--namespace', NS, '--kube-version', '1.29.4']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('admissionPolicy.enabled needs Kubernetes 1.30 or later');
    const without = await helm(['template', RELEASE, CHART_DIR, '--namespace', NS, '--kube-version', '1.29.4'], { admissionPolicy: { enabled: false } });
    expect(without.code, without.stderr).toBe(0);
  });

  it('documents in its README every value that values.schema.json declares', () => {
    interface Schema { properties?: Record<string, Schema>; additionalProperties?: unknown }
    const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
    const paths: string[] = [];
    // Objects closed by the schema are walked into; open ones (resources, affinity...) are one value.
    const walk = (s: Schema, path: string): void => {
      if (s.properties && s.additionalProperties === false) {
        for (const [k, child] of Object.entries(s.properties)) walk(child, path ? `${path}.${k}` : k);
      } else {
        paths.push(path);
      }
    };
    walk(JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as Schema, '');
    expect(paths.length).toBeGreaterThan(40);
    expect(paths.filter((p) => !readme.includes(`\`${p}\``))).toEqual([]);
  });
});

describe('the copies of other sources', () => {
  it('has no crds/ folder, whose files Helm would install once and never upgrade, beside its CRD templates', () => {
    expect(existsSync(join(CHART_DIR, 'crds'))).toBe(false);
  });

  it('ships byte-identical copies of crds/ as the chart CRDs', () => {
    expect(readdirSync(CHART_CRDS_DIR).sort()).toEqual(crdFileNames());
    expect(crdFileNames()).toHaveLength(4);
    for (const f of crdFileNames()) {
      expect(readFileSync(join(CHART_CRDS_DIR, f), 'utf8'), f).toBe(readFileSync(join(CRDS_DIR, f), 'utf8'));
    }
  });

  it('has manifests/install/ exactly as scripts/render-manifests.ts renders it now', () => {
    const rendered = renderInstallManifests(clusterState().binaries.helm);
    expect(readdirSync(INSTALL_DIR).sort()).toEqual(Object.keys(rendered).sort());
    for (const [name, text] of Object.entries(rendered)) {
      expect(readFileSync(join(INSTALL_DIR, name), 'utf8'), `${name}: run node_modules/.bin/node scripts/render-manifests.ts`).toBe(text);
    }
  });
});
