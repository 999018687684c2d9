/**
 * The descriptions written in crds/ are what a person reads: the real
 * apiserver publishes each one in its OpenAPI v3 document of apikeys.dev, and
 * `kubectl explain` prints them, for the fields the issue named (spec, status,
 * spec.rotation, deploymentRef.name, the status fields, every condition field).
 * src/api/crd-descriptions.test.ts proves every field has one.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { kubectl } from './support/cluster.ts';
import { CRD_FILES } from './support/paths.ts';
import { adminClient } from './support/resources.ts';
import { waitFor } from './support/wait.ts';

interface Schema { description?: string; properties?: Record<string, Schema>; items?: Schema; allOf?: Schema[] }
interface Crd { spec: { group: string; names: { kind: string; plural: string }; versions: { name: string; schema: { openAPIV3Schema: Schema } }[] } }

const crds = CRD_FILES.map((f) => parse(readFileSync(f, 'utf8')) as Crd);
const squash = (s: string | undefined) => (s ?? '').replace(/\s+/g, ' ').trim();

/** [path, description] of every field of a schema but those Kubernetes describes (apiVersion, kind, metadata). */
function descriptions(s: Schema, path = ''): [string, string][] {
  if (['.apiVersion', '.kind', '.metadata'].includes(path)) return [];
  const out: [string, string][] = [[path || '.', squash(s.description)]];
  for (const [name, p] of Object.entries(s.properties ?? {})) out.push(...descriptions(p, `${path}.${name}`));
  if (s.items?.properties) out.push(...descriptions(s.items, `${path}[]`));
  return out;
}

describe('the apiserver\'s OpenAPI v3 document of apikeys.dev', () => {
  it.each(crds.flatMap((c) => c.spec.versions.map((v) => [c.spec.names.kind, v.name, c, v.schema.openAPIV3Schema] as const)))(
    'publishes every description of %s %s as crds/ writes it', async (kind, version, crd, source) => {
      const doc = await waitFor(`OpenAPI v3 of ${crd.spec.group}/${version}`, async () => {
        const d = await adminClient().get<{ components: { schemas: Record<string, Schema> } }>(`/openapi/v3/apis/${crd.spec.group}/${version}`);
        return Object.values(d.components.schemas).some((s) => squash(s.description) === squash(source.description)) ? d : undefined;
      }, 60_000, 500);
      const reversedGroup = crd.spec.group.split('.').reverse().join('.');
      const published = doc.components.schemas[`${reversedGroup}.${version}.${kind}`];
      expect(published, `${kind} in the OpenAPI document`).toBeDefined();
      const want = Object.fromEntries(descriptions(source));
      expect(Object.values(want)).not.toContain('');
      expect(Object.fromEntries(descriptions(published!))).toEqual(want);
    });
});

describe('kubectl explain', () => {
  it.each<[string, RegExp]>([
    ['apikeys.apikeys.dev.spec', /What the key is for and how it behaves/],
    ['apikeys.apikeys.dev.spec.rotation', /When the secret is replaced by a new one/],
    ['apikeys.apikeys.dev.spec.deploymentRef.name', /The name of the Deployment \(apikeys\.dev\), in this object's namespace/],
    ['apikeys.apikeys.dev.status', /What the controller last did and found/],
    ['apikeys.apikeys.dev.status.lastRotationTime', /When the secret was last replaced by a rotation/],
    ['apikeys.apikeys.dev.status.conditions.reason', /Why, as one CamelCase word for machines and alerts/],
    ['deployments.apikeys.dev.status.conditions.observedGeneration', /The metadata\.generation the condition was computed from/],
    ['federatedcredentials.apikeys.dev.spec.deploymentRef.name', /The name of the Deployment \(apikeys\.dev\)/],
    ['federatedcredentials.apikeys.dev.status.conditions.message', /as a sentence for people/],
  ])('%s shows its description', async (field, description) => {
    const r = await kubectl(['explain', field]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('<empty>');
    expect(squash(r.stdout)).toMatch(description);
  });

  it('lists each field of apikey.spec with its description, none empty', async () => {
    const r = await kubectl(['explain', 'apikeys.apikeys.dev.spec']);
    const spec = crds.find((c) => c.spec.names.kind === 'ApiKey')!.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;
    for (const [name, p] of Object.entries(spec.properties!)) {
      expect(squash(r.stdout)).toContain(`${name} <`);
      expect(squash(r.stdout)).toContain(squash(p.description).slice(0, 40));
    }
  });
});
