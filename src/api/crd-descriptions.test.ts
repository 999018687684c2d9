/**
 * Every field of every CRD has a description, which `kubectl explain` shows
 * (test/crd-explain.test.ts reads it back from a real apiserver). The CRDs are
 * written once, in crds/; the chart's files/crds/ and manifests/install/01-crds.yaml
 * are copies that scripts/render-manifests.ts writes, so they are walked too.
 * A field added without a description fails here, named by its path.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

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

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const yamlFiles = (dir: string) => readdirSync(join(root, dir)).filter((f) => f.endsWith('.yaml')).map((f) => join(dir, f));
const sources = [...yamlFiles('crds'), ...yamlFiles('charts/apikey-operator/files/crds'), 'manifests/install/01-crds.yaml'];

function crdsIn(file: string): Crd[] {
  return parseAllDocuments(readFileSync(join(root, file), 'utf8')).map((d) => d.toJS() as Crd | null)
    .filter((c): c is Crd => c?.kind === 'CustomResourceDefinition');
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

const cases = sources.flatMap((file) => crdsIn(file).flatMap((crd) => crd.spec.versions.map((v) =>
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
