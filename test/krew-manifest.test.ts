/**
 * The krew plugin manifest (plugins/krew/apikey.yaml) has the shape krew
 * validates (apiVersion, name matching the kubectl-apikey executable, a
 * v-prefixed version equal to the package's, one platform per OS and
 * architecture with an https URI, a sha256, the executable in its files and
 * as its bin), and the release script fills each platform's URI and sum for
 * real archives, leaving the repository's file as it was.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ROOT } from './support/paths.ts';
import { run } from './support/run.ts';

interface KrewPlatform {
  selector: { matchLabels: { os: string; arch: string } };
  uri: string;
  sha256: string;
  files: { from: string; to: string }[];
  bin: string;
}
interface KrewPlugin {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { version: string; homepage: string; shortDescription: string; description: string; caveats?: string; platforms: KrewPlatform[] };
}

const MANIFEST = join(ROOT, 'plugins', 'krew', 'apikey.yaml');
const manifest = () => parseYaml(readFileSync(MANIFEST, 'utf8')) as KrewPlugin;
const dir = mkdtempSync(join(tmpdir(), 'krew-manifest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the krew plugin manifest', () => {
  it('is a krew Plugin named after the executable, at the package\'s version', () => {
    const m = manifest();
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    expect(m.apiVersion).toBe('krew.googlecontainertools.github.com/v1alpha2');
    expect(m.kind).toBe('Plugin');
    expect(m.metadata.name).toBe('apikey');
    expect(pkg.bin[`kubectl-${m.metadata.name}`]).toBeDefined();
    expect(m.spec.version).toBe(`v${pkg.version}`);
    expect(m.spec.homepage).toMatch(/^https:\/\//);
    expect(m.spec.shortDescription.length).toBeGreaterThan(0);
    expect(m.spec.shortDescription.length).toBeLessThanOrEqual(60);
    expect(m.spec.description).toMatch(/apikey-operator/);
    expect(m.spec.caveats).toMatch(/kubectl_complete-apikey/);
  });

  it('has one platform per OS and architecture, each with an https URI, a sha256, and the executable as its bin', () => {
    const platforms = manifest().spec.platforms;
    const keys = platforms.map((p) => `${p.selector.matchLabels.os}/${p.selector.matchLabels.arch}`);
    expect(keys).toEqual(['linux/amd64', 'linux/arm64', 'darwin/amd64', 'darwin/arm64']);
    for (const p of platforms) {
      expect(p.uri).toMatch(new RegExp(`^https://example\\.com/.+/kubectl-apikey-${p.selector.matchLabels.os}-${p.selector.matchLabels.arch}\\.tar\\.gz$`));
      expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(p.bin).toBe('kubectl-apikey');
      expect(p.files).toContainEqual({ from: 'kubectl-apikey', to: '.' });
    }
  });

  it('is filled for a release by scripts/fill-krew-manifest.ts, with the archives\' sums, and the repository\'s file is unchanged', async () => {
    const before = readFileSync(MANIFEST, 'utf8');
    const amd = join(dir, 'linux-amd64.tar.gz');
    const arm = join(dir, 'darwin-arm64.tar.gz');
    writeFileSync(amd, 'an archive for linux/amd64');
    writeFileSync(arm, 'an archive for darwin/arm64');
    const out = join(dir, 'apikey.yaml');
    const r = await run(process.execPath, [
      join(ROOT, 'scripts', 'fill-krew-manifest.ts'), '--version', 'v0.2.0', '--base-url', 'https://releases.example.com/v0.2.0/',
      '--archive', `linux/amd64=${amd}`, '--archive', `darwin/arm64=${arm}`, '--out', out,
    ], { cwd: ROOT });
    expect(r.code, r.stderr).toBe(0);
    const filled = parseYaml(readFileSync(out, 'utf8')) as KrewPlugin;
    expect(filled.spec.version).toBe('v0.2.0');
    const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
    const [linuxAmd, linuxArm, , darwinArm] = filled.spec.platforms;
    expect(linuxAmd).toMatchObject({ uri: 'https://releases.example.com/v0.2.0/kubectl-apikey-linux-amd64.tar.gz', sha256: sha(amd) });
    expect(darwinArm).toMatchObject({ uri: 'https://releases.example.com/v0.2.0/kubectl-apikey-darwin-arm64.tar.gz', sha256: sha(arm) });
    expect(linuxArm!.sha256).toBe('0'.repeat(64));
    expect(readFileSync(out, 'utf8')).toContain('# The krew plugin manifest');
    expect(readFileSync(MANIFEST, 'utf8')).toBe(before);
  });
});
