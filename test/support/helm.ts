/**
 * What the chart tests need of Helm: run it on the chart with a set of values (passed as a values
 * file on stdin, exactly as a user's values.yaml), and read the objects it renders.
 */
import { parseAllDocuments } from 'yaml';
import { CHART_DIR } from '../../scripts/render-manifests.ts';
import { clusterState } from './cluster.ts';
import { run, type Run } from './run.ts';

/** A rendered Kubernetes object: the fields every object has, the rest left to the caller's cast. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}

/** Runs the test control plane's helm against its cluster; `values`, if any, go in as a values file. */
export function helm(args: string[], values?: object): Promise<Run> {
  const state = clusterState();
  const valuesArgs = values ? ['--values', '-'] : [];
  return run(state.binaries.helm, [...args, '--kubeconfig', state.kubeconfig, ...valuesArgs], {
    input: values ? JSON.stringify(values) : undefined,
  });
}

export function parseManifests(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

/** `helm template` of the chart; throws with Helm's message when it fails. */
export async function renderChart(release: string, namespace: string, values: object = {}): Promise<KubeObject[]> {
  const r = await helm(['template', release, CHART_DIR, '--namespace', namespace], values);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return parseManifests(r.stdout);
}

/** The one object of this kind whose name is exactly `name`. */
export function findObject<T = KubeObject>(objects: KubeObject[], kind: string, name: string): T {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0] as T;
}

export function objectsOfKind<T = KubeObject>(objects: KubeObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[];
}

/** What the chart renders with its default values, by kind. */
export const DEFAULT_KINDS: Readonly<Record<string, number>> = {
  CustomResourceDefinition: 4, ServiceAccount: 2, ClusterRole: 8, ClusterRoleBinding: 4, Role: 2, RoleBinding: 2, Service: 3, Deployment: 1,
  ValidatingAdmissionPolicy: 4, ValidatingAdmissionPolicyBinding: 4,
};

/**
 * The test control plane has the CRDs from crds/ before any test runs; a release that installed
 * them as well would clash with them (and own them), so releases there leave them out.
 */
export const WITHOUT_CRDS = { crds: { enabled: false } } as const;

/** DEFAULT_KINDS without the CRDs: what a release with WITHOUT_CRDS renders. */
export const DEFAULT_KINDS_WITHOUT_CRDS: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(DEFAULT_KINDS).filter(([kind]) => kind !== 'CustomResourceDefinition'));

/** "Kind" -> count, for comparing what a configuration renders with what a test expects. */
export function kindCounts(objects: KubeObject[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of objects) counts[o.kind] = (counts[o.kind] ?? 0) + 1;
  return counts;
}
