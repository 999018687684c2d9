/**
 * The manual's links work, with no network: every relative link and #anchor of README.md and
 * docs/**\/*.md (and the chart's and the benchmarks' READMEs) names a file that exists and a
 * heading it has (GitHub's anchor rules), and every repository path or npm script a page names in a
 * command block or a code span exists.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { anchorsOf, brokenReferences, githubSlug, manualPages, pathExists } from './support/markdown.ts';
import { ROOT } from './support/paths.ts';

describe('the manual', () => {
  it('has the front page, its index and every page of its layout', () => {
    const pages = manualPages(ROOT);
    for (const p of ['README.md', 'docs/README.md', 'docs/getting-started.md', 'docs/operations/troubleshooting.md',
      'docs/guides/ci-with-a-key.md', 'docs/guides/verifying-tokens.md', 'docs/operations/high-availability.md', 'docs/development/layout.md']) {
      expect(pages).toContain(p);
    }
  });

  it('has no broken link, anchor, path or npm script', () => {
    expect(brokenReferences(ROOT)).toEqual([]);
  });
});

describe('the link checker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'docs-links-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (path: string, text: string): void => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  };

  it('makes anchors as GitHub does', () => {
    expect(githubSlug('Deployment (`apikeys.dev/v1`)')).toBe('deployment-apikeysdevv1');
    expect(githubSlug('Installing without Node.js: krew, or one binary')).toBe('installing-without-nodejs-krew-or-one-binary');
    expect(githubSlug('Keyless CI: FederatedCredential')).toBe('keyless-ci-federatedcredential');
    expect(githubSlug('Local mode: `kubectl apikey console`')).toBe('local-mode-kubectl-apikey-console');
    expect(githubSlug('**Sessions** and [links](x.md)')).toBe('sessions-and-links');
    expect(githubSlug('snake_case & Ünïcode')).toBe('snake_case--ünïcode');
    expect([...anchorsOf('# A\n## A\n```sh\n# A\n```\n## A\n<a id="here"></a>\n')]).toEqual(['a', 'a-1', 'a-2', 'here']);
  });

  it('names each broken link, anchor, path and script, and nothing that works', () => {
    write('package.json', JSON.stringify({ scripts: { start: 'x' } }));
    write('manifests/examples/a.yaml', 'a: 1\n');
    write('scripts/x.ts', '');
    write('README.md', [
      '# Front', '', '## Two words', '',
      '[ok](docs/guide.md#setup) [ok](#two-words) [ok](manifests/examples/a.yaml) [web](https://example.com/x)',
      '[missing](docs/nope.md) [bad anchor](docs/guide.md#nope) [self](#front-page)',
      '', '```sh', 'kubectl apply -f manifests/examples/a.yaml -f manifests/examples/b.yaml', 'npm run start && npm run nope',
      'node scripts/x.ts   # scripts/in-a-comment.ts is not a command', '```', '',
      'Run `scripts/gone.ts` or `manifests/examples/*.yaml`; [not a link](`x.md`).', '',
    ].join('\n'));
    write('docs/guide.md', '# Guide\n\n## Setup\n\n[back](../README.md#two-words) [up](../manifests/examples/a.yaml) [gone](../../outside.md)\n');
    execFileSync('git', ['init', '-q'], { cwd: dir });
    expect(brokenReferences(dir)).toEqual([
      'README.md:6: docs/nope.md: no such file (docs/nope.md)',
      'README.md:6: docs/guide.md#nope: docs/guide.md has no heading whose anchor is #nope',
      'README.md:6: #front-page: README.md has no heading whose anchor is #front-page',
      'README.md:9: manifests/examples/b.yaml: no such path in the repository',
      'README.md:14: scripts/gone.ts: no such path in the repository',
      'README.md:10: npm run nope: package.json has no such script',
      'docs/guide.md:5: ../../outside.md: no such file (../outside.md)',
    ]);
  });

  it('matches paths with wildcards against the repository\'s files', () => {
    const files = ['test/console.test.ts', 'test/cluster/bins/k8s/go.mod', 'src/a/b.test.ts'];
    expect(pathExists('test/console*.test.ts', files)).toBe(true);
    expect(pathExists('test/cluster/bins/*/go.mod', files)).toBe(true);
    expect(pathExists('src/**/*.test.ts', files)).toBe(true);
    expect(pathExists('test/cluster', files)).toBe(true);
    expect(pathExists('test/{console,x}.test.ts', files)).toBe(true);
    expect(pathExists('test/nothing*.ts', files)).toBe(false);
    expect(pathExists('test/consol', files)).toBe(false);
  });
});
