/**
 * The Helm chart renders what each of its values asks for, every pod it renders is hardened, bad
 * values are refused by values.schema.json, and the copies that come from elsewhere (the chart's
 * CRDs, manifests/install/) have not drifted from their sources.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  V1ClusterRole, V1ClusterRoleBinding, V1Container, V1Deployment, V1NetworkPolicy, V1PodDisruptionBudget,
  V1RoleBinding, V1Service, V1ServiceAccount, V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  CHART_CRDS_DIR, CHART_DIR, CRDS_DIR, INSTALL_DIR, crdFileNames, renderInstallManifests,
} from '../scripts/render-manifests.ts';
import { clusterState } from './support/cluster.ts';
import { DEFAULT_KINDS, findObject, helm, kindCounts, objectsOfKind, renderChart, type KubeObject } from './support/helm.ts';

const RELEASE = 'ako';
const NS = 'ops';
const F = 'ako-apikey-operator';
const TOKEN_SA = `${F}-token-server`;
const CONTROLLER_SA = `${F}-controller`;

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

/** The Service's selector matches the Deployment's pods, and its target port is one of theirs. */
function expectServiceSelects(objects: KubeObject[], service: string, deployment: string): void {
  const svc = findObject<V1Service>(objects, 'Service', service);
  const pod = findObject<V1Deployment>(objects, 'Deployment', deployment).spec?.template;
  expect(pod?.metadata?.labels).toMatchObject(svc.spec?.selector ?? { missing: 'selector' });
  const podPorts = (pod?.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).map((p) => p.name));
  for (const p of svc.spec?.ports ?? []) expect(podPorts).toContain(p.targetPort);
}

interface ChartCase { values: object; check: (objects: KubeObject[]) => void }

const CASES: [string, ChartCase][] = [
  ['the default values (the token server as a sidecar)', { values: {}, check: (o) => {
    expect(kindCounts(o)).toEqual(DEFAULT_KINDS);
    const pod = findObject<V1Deployment>(o, 'Deployment', `${F}-controller`).spec?.template.spec;
    expect(pod?.containers.map((c) => c.name)).toEqual(['controller', 'token-server']);
    expect(pod?.serviceAccountName).toBe(CONTROLLER_SA);
    expectServiceSelects(o, `${F}-token`, `${F}-controller`);
    expectServiceSelects(o, `${F}-controller-metrics`, `${F}-controller`);
    const ctl = container(o, `${F}-controller`, 'controller');
    const ts = container(o, `${F}-controller`, 'token-server');
    expect(ctl.args?.[0]).toBe('controller');
    expect(ts.args?.[0]).toBe('token-server');
    expect(flag(ctl, 'token-url')).toBe(`http://${F}-token.${NS}.svc:8080/oauth/token`);
    expect(flag(ts, 'issuer')).toBe(`http://${F}-token.${NS}.svc:8080`);
    expect(flag(ts, 'port')).toBe('8080');
    expect(flag(ts, 'user-token-ttl')).toBe('1h');
    expect(flag(ctl, 'health-port')).toBe('8081');
    expect(flag(ctl, 'signing-algorithm')).toBe('ES256');
    expect(flag(ctl, 'signing-key-rotation')).toBe('720h');
    expect(flag(ctl, 'leader-elect')).toBe('true');
    expect(flag(ctl, 'workers')).toBe('4');
    for (const c of [ctl, ts]) {
      expect(flag(c, 'operator-namespace')).toBe(NS);
      expect(flag(c, 'log-level')).toBe('info');
      expect(flag(c, 'namespaces')).toBeUndefined();
      expect(flag(c, 'audiences')).toBeUndefined();
      expect(c.env?.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath])).toEqual(
        [['POD_NAME', 'metadata.name'], ['POD_NAMESPACE', 'metadata.namespace']]);
    }
    // Containers of one pod share its ServiceAccount: it holds both sets of rights.
    for (const role of [`${F}-controller`, `${F}-token-server`, `${F}-token-server-reviews`]) {
      expect(subjectsOf(o, role)).toEqual([`ServiceAccount:${NS}/${CONTROLLER_SA}`]);
    }
    expect(subjectsOf(o, `${F}-token-server-signing-keys`)).toEqual([`ServiceAccount:${NS}/${CONTROLLER_SA}`]);
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
      expect(sm.spec.endpoints.map((e) => [e.port, e.path, e.interval])).toEqual([['metrics', '/metrics', '15s'], ['http', '/metrics', '15s']]);
      // Each endpoint's port is a port of a Service the ServiceMonitor selects.
      const selected = objectsOfKind<V1Service>(o, 'Service')
        .filter((s) => Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => s.metadata?.labels?.[k] === v));
      const ports = selected.flatMap((s) => (s.spec?.ports ?? []).map((p) => p.name));
      for (const e of sm.spec.endpoints) expect(ports).toContain(e.port);
    },
  }],
  ['NetworkPolicies that admit CI jobs to the token port', {
    values: { tokenServer: { mode: 'deployment' }, networkPolicy: { enabled: true, tokenClients: [{ namespaceSelector: { matchLabels: { ci: 'true' } } }] } },
    check: (o) => {
      const ctl = findObject<V1NetworkPolicy>(o, 'NetworkPolicy', `${F}-controller`);
      expect(ctl.spec?.ingress).toEqual([{ ports: [{ port: 'health', protocol: 'TCP' }] }]);
      const ts = findObject<V1NetworkPolicy>(o, 'NetworkPolicy', `${F}-token-server`);
      expect(ts.spec?.ingress).toEqual([{
        ports: [{ port: 'http', protocol: 'TCP' }], from: [{ namespaceSelector: { matchLabels: { ci: 'true' } } }],
      }]);
      expect(findObject<V1Deployment>(o, 'Deployment', `${F}-token-server`).spec?.template.metadata?.labels)
        .toMatchObject(ts.spec?.podSelector?.matchLabels ?? { missing: 'selector' });
    },
  }],
  ['EdDSA signing keys rotated weekly', { values: { signing: { algorithm: 'EdDSA', rotation: '168h' } }, check: (o) => {
    const ctl = container(o, `${F}-controller`, 'controller');
    expect([flag(ctl, 'signing-algorithm'), flag(ctl, 'signing-key-rotation')]).toEqual(['EdDSA', '168h']);
  } }],
  ['trusted proxies for the token server', { values: { tokenServer: { trustedProxies: ['10.0.0.0/8', 'fd00::/8'] } }, check: (o) => {
    expect(flag(container(o, `${F}-controller`, 'token-server'), 'trusted-proxies')).toBe('10.0.0.0/8,fd00::/8');
    expect(flag(container(o, `${F}-controller`, 'controller'), 'trusted-proxies')).toBeUndefined();
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
  ['three controller replicas with leader election', { values: { controller: { replicas: 3, workers: 8 } }, check: (o) => {
    expect(findObject<V1Deployment>(o, 'Deployment', `${F}-controller`).spec?.replicas).toBe(3);
    expect(flag(container(o, `${F}-controller`, 'controller'), 'workers')).toBe('8');
  } }],
  ['no roles for people', { values: { rbac: { userRoles: { enabled: false } } }, check: (o) => {
    expect(kindCounts(o)).toEqual({ ...DEFAULT_KINDS, ClusterRole: 3 });
  } }],
  ['a fullnameOverride, which every name, cluster-scoped ones included, starts with', { values: { fullnameOverride: 'keys' }, check: (o) => {
    for (const obj of o) expect(obj.metadata.name).toMatch(/^keys(-|$)/);
  } }],
];

/** The restricted Pod Security Standard, and what the kubelet needs to manage the containers. */
function expectHardened(objects: KubeObject[]): void {
  for (const sa of objectsOfKind<V1ServiceAccount>(objects, 'ServiceAccount')) expect(sa.automountServiceAccountToken).toBe(false);
  const templates = podTemplates(objects);
  expect(templates.length).toBeGreaterThan(0);
  for (const { deployment } of templates) {
    const pod = deployment.spec?.template.spec;
    expect(pod?.automountServiceAccountToken).toBe(true);
    expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    for (const c of pod?.containers ?? []) {
      expect(c.securityContext, c.name).toEqual({
        runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
      });
      for (const amounts of [c.resources?.requests, c.resources?.limits]) {
        expect([typeof amounts?.cpu, typeof amounts?.memory], c.name).toEqual(['string', 'string']);
      }
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
    ['a value the chart does not have', { tokenServer: { replicaCount: 3 } }, 'replicaCount'],
    ['zero controller replicas', { controller: { replicas: 0 } }, '/controller/replicas'],
    ['an issuer that is not an http(s) URL', { issuerURL: 'auth.example.com' }, '/issuerURL'],
    ['a watched namespace that is not a valid name', { watchNamespaces: ['Team_A'] }, '/watchNamespaces/0'],
    ['a CPU target above 100%', { tokenServer: { autoscaling: { targetCPUUtilizationPercentage: 150 } } }, '/tokenServer/autoscaling'],
    ['a string where a number belongs', { controller: { workers: 'four' } }, '/controller/workers'],
    ['several controller replicas without leader election', { controller: { replicas: 2, leaderElect: false } }, 'leaderElect'],
    ['an autoscaler whose maximum is below its minimum', {
      tokenServer: { mode: 'deployment', autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 2 } },
    }, 'maxReplicas'],
  ])('refuses %s', async (_name, values, message) => {
    const r = await helm(['template', RELEASE, CHART_DIR, '--namespace', NS], values);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
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
  it('ships byte-identical copies of crds/ as the chart CRDs', () => {
    expect(readdirSync(CHART_CRDS_DIR).sort()).toEqual(crdFileNames());
    expect(crdFileNames()).toHaveLength(2);
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
