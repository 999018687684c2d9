/**
 * The API versions of every CRD (docs/reference/api-policy.md): `apikeys.dev/v1` is served and
 * stored; `apikeys.dev/v1alpha1` is still served, deprecated with a warning, and has exactly v1's
 * schema, subresources and printer columns, so that the apiserver converts between them by changing
 * `apiVersion` only (`conversion.strategy: None`), losslessly both ways. A field added to one
 * version's block and not the other fails here, named by its CRD and file. The CRDs are written in
 * crds/; the chart's files/crds/ and manifests/install/01-crds.yaml are the copies that
 * scripts/render-manifests.ts writes, and are checked too.
 */
import { describe, expect, it } from 'vitest';
import { CRD_PLACES, CRD_SOURCES, crdsIn } from '../../test/support/crd-files.ts';
import { GROUP, VERSION } from './names.ts';

interface Version {
  name: string;
  served: boolean;
  storage: boolean;
  deprecated?: boolean;
  deprecationWarning?: string;
  schema: unknown;
  subresources?: unknown;
  additionalPrinterColumns?: unknown;
}
interface Crd {
  kind: string;
  metadata: { name: string };
  spec: { group: string; names: { kind: string }; conversion?: { strategy: string }; versions: Version[] };
}

const cases = CRD_SOURCES.flatMap((file) => crdsIn<Crd>(file).map((crd) => [`${file}: ${crd.metadata.name}`, crd] as const));
const KINDS = ['ApiKey', 'AudienceClaim', 'Deployment', 'FederatedCredential'];

describe('the CRDs API versions', () => {
  it('are read from crds/, the chart and manifests/install, every kind in each', () => {
    expect(VERSION).toBe('v1');
    for (const group of Object.values(CRD_PLACES)) {
      expect(group.flatMap((f) => crdsIn<Crd>(f)).map((c) => c.spec.names.kind).sort()).toEqual(KINDS);
    }
  });

  it.each(cases)('%s: v1 is served and the only storage version; v1alpha1 is served and deprecated with a warning', (_where, crd) => {
    const kind = crd.spec.names.kind;
    expect(crd.spec.group).toBe(GROUP);
    expect(crd.spec.versions.map((v) => v.name).sort()).toEqual(['v1', 'v1alpha1']);
    const v1 = crd.spec.versions.find((v) => v.name === 'v1')!;
    const alpha = crd.spec.versions.find((v) => v.name === 'v1alpha1')!;
    expect(crd.spec.versions.filter((v) => v.storage)).toEqual([v1]);
    expect(v1).toMatchObject({ served: true, storage: true });
    expect(v1.deprecated ?? false).toBe(false);
    expect(v1.deprecationWarning).toBeUndefined();
    expect(alpha).toMatchObject({ served: true, storage: false, deprecated: true });
    expect(alpha.deprecationWarning).toBe(`apikeys.dev/v1alpha1 ${kind} is deprecated; use apikeys.dev/v1 ${kind}`);
  });

  it.each(cases)('%s: the versions have the same schema, subresources and printer columns, converted with strategy None', (_where, crd) => {
    expect(crd.spec.conversion).toEqual({ strategy: 'None' });
    const v1 = crd.spec.versions.find((v) => v.name === 'v1')!;
    const alpha = crd.spec.versions.find((v) => v.name === 'v1alpha1')!;
    // One by one, so that a failure names the block that drifted.
    expect(alpha.schema, 'schema').toStrictEqual(v1.schema);
    expect(alpha.subresources, 'subresources').toStrictEqual(v1.subresources);
    expect(alpha.additionalPrinterColumns, 'additionalPrinterColumns').toStrictEqual(v1.additionalPrinterColumns);
    // Nothing else differs but the version's own name and its serving flags.
    const rest = ({ name: _n, storage: _s, deprecated: _d, deprecationWarning: _w, ...r }: Version) => r;
    expect(rest(alpha)).toStrictEqual(rest(v1));
    expect(JSON.stringify(v1.schema).length).toBeGreaterThan(1000);
  });
});
