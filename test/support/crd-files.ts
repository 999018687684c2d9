/**
 * The CRD manifests of the repository, for the unit tests that check them: crds/ (where they are
 * written), and the copies scripts/render-manifests.ts makes (the chart's files/crds/ and
 * manifests/install/01-crds.yaml), each parsed into its CustomResourceDefinitions.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './paths.ts';

const yamlFiles = (dir: string) => readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.yaml')).map((f) => join(dir, f));

/** The three places, each a list of files relative to the repository root. */
export const CRD_PLACES = {
  crds: yamlFiles('crds'),
  chart: yamlFiles('charts/apikey-operator/files/crds'),
  install: ['manifests/install/01-crds.yaml'],
};
export const CRD_SOURCES = [...CRD_PLACES.crds, ...CRD_PLACES.chart, ...CRD_PLACES.install];

/** The CustomResourceDefinitions in `file` (relative to the repository root). */
export function crdsIn<T>(file: string): T[] {
  return parseAllDocuments(readFileSync(join(ROOT, file), 'utf8')).map((d) => d.toJS() as (T & { kind?: string }) | null)
    .filter((c): c is T & { kind: string } => c?.kind === 'CustomResourceDefinition');
}
