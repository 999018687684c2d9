/**
 * Fills the krew manifest (plugins/krew/apikey.yaml) for a release: its
 * version, and for each platform whose archive is given the archive's URI
 * (BASE-URL/kubectl-apikey-OS-ARCH.tar.gz) and sha256. Writes the result to
 * --out (default: stdout), so the manifest in the repository keeps its
 * placeholders.
 *
 *   node scripts/fill-krew-manifest.ts --version v0.2.0 --base-url https://example.com/releases/v0.2.0 \
 *     --archive linux/amd64=dist/kubectl-apikey-linux-amd64.tar.gz [--archive ...] [--out FILE]
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';

export const KREW_MANIFEST = join(resolve(import.meta.dirname, '..'), 'plugins', 'krew', 'apikey.yaml');

interface Platform { selector: { matchLabels: { os: string; arch: string } }; uri: string; sha256: string }

/** The manifest's text with `version`, and each given platform's uri and sha256 filled in. */
export function fillKrewManifest(text: string, version: string, baseUrl: string, archives: Record<string, Buffer>): string {
  const doc = parseDocument(text);
  doc.setIn(['spec', 'version'], version);
  const platforms = doc.getIn(['spec', 'platforms']) as { items: unknown[] };
  platforms.items.forEach((_, i) => {
    const p = (doc.getIn(['spec', 'platforms', i]) as { toJSON(): Platform }).toJSON();
    const key = `${p.selector.matchLabels.os}/${p.selector.matchLabels.arch}`;
    const archive = archives[key];
    if (!archive) return;
    doc.setIn(['spec', 'platforms', i, 'uri'], `${baseUrl.replace(/\/$/, '')}/kubectl-apikey-${p.selector.matchLabels.os}-${p.selector.matchLabels.arch}.tar.gz`);
    doc.setIn(['spec', 'platforms', i, 'sha256'], createHash('sha256').update(archive).digest('hex'));
  });
  return doc.toString();
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const { values } = parseArgs({
    options: {
      version: { type: 'string' }, 'base-url': { type: 'string' }, archive: { type: 'string', multiple: true }, out: { type: 'string' },
    },
  });
  if (!values.version || !values['base-url'] || !values.archive?.length) {
    process.stderr.write('usage: fill-krew-manifest.ts --version vX.Y.Z --base-url URL --archive OS/ARCH=FILE... [--out FILE]\n');
    process.exit(2);
  }
  const archives = Object.fromEntries(values.archive.map((a) => {
    const [platform, file] = a.split('=', 2) as [string, string];
    return [platform, readFileSync(file)];
  }));
  const filled = fillKrewManifest(readFileSync(KREW_MANIFEST, 'utf8'), values.version, values['base-url'], archives);
  if (values.out) writeFileSync(values.out, filled);
  else process.stdout.write(filled);
}
