/**
 * Every field of every CRD has a description, which `kubectl explain` shows
 * (test/crd-explain.test.ts reads it back from a real apiserver). The CRDs are
 * written once, in crds/; the chart's files/crds/ and manifests/install/01-crds.yaml
 * are copies that scripts/render-manifests.ts writes, so they are walked too.
 * A field added without a description fails here, named by its path.
 */
import { describe, expect, it } from 'vitest';
import { CRD_SOURCES, crdsIn } from '../../test/support/crd-files.ts';

interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
}
interface Crd {
  kind: string;
  metadata: { name: string };
  spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
}

/**
 * Fields the apiserver describes itself: it publishes Kubernetes' own text for
 * apiVersion and kind whatever a CRD says, and refuses anything but
 * `type: object` at metadata (ObjectMeta).
 */
const KUBERNETES_DESCRIBES = new Set(['.apiVersion', '.kind', '.metadata']);

/**
 * The paths of the fields without a description: every property, and the
 * elements of a list of objects (kubectl explain shows them as the list's
 * fields), at any depth.
 */
export function undescribed(schema: Schema, path: string): string[] {
  if (KUBERNETES_DESCRIBES.has(path)) return [];
  const missing = schema.description?.trim() ? [] : [path];
  for (const [name, p] of Object.entries(schema.properties ?? {})) missing.push(...undescribed(p, `${path}.${name}`));
  if (schema.items?.properties) missing.push(...undescribed(schema.items, `${path}[]`));
  if (typeof schema.additionalProperties === 'object' && schema.additionalProperties.properties) {
    missing.push(...undescribed(schema.additionalProperties, `${path}{}`));
  }
  return missing;
}

const cases = CRD_SOURCES.flatMap((file) => crdsIn<Crd>(file).flatMap((crd) => crd.spec.versions.map((v) =>
  [`${file}: ${crd.metadata.name} ${v.name}`, v.schema.openAPIV3Schema] as const)));

describe('the CRD schemas', () => {
  it('are found in crds/, the chart and manifests/install, for every kind', () => {
    expect(cases.length).toBeGreaterThanOrEqual(9);
  });

  it.each(cases)('%s: every field has a description', (_where, schema) => {
    expect(undescribed(schema, '')).toEqual([]);
  });

  it('find a field without one, at any depth, in a list or a map', () => {
    const schema: Schema = { description: 'x', properties: {
      apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' },
      spec: { description: 'x', properties: { a: { type: 'string' }, m: { additionalProperties: { properties: { b: {} } }, description: 'x' } } },
      status: { description: 'x', properties: { conditions: { description: 'x', items: { properties: { reason: { description: ' ' } } } } } },
    } };
    expect(undescribed(schema, '')).toEqual(['.spec.a', '.spec.m{}', '.spec.m{}.b', '.status.conditions[]', '.status.conditions[].reason']);
  });

  it('describe conditions the same way in every kind that has them (one definition, three copies)', () => {
    const withConditions = cases.filter(([, s]) => s.properties?.status?.properties?.conditions);
    expect(withConditions.length).toBeGreaterThanOrEqual(9);
    const conditions = withConditions.map(([, s]) => JSON.stringify(s.properties?.status?.properties?.conditions));
    expect(new Set(conditions).size).toBe(1);
  });
});
