/**
 * Which module of src/ may import which (docs/development/layout.md, "Layers"). Every relative
 * import and dynamic import() of src/**\/*.ts is read with TypeScript's own pre-processor (so an
 * import in a comment or a string does not count) and checked against the layers below; a new
 * folder of src/ must be given a layer here before it can be imported at all.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = dirname(fileURLToPath(import.meta.url));
const ROOT = join(SRC, '..');

/**
 * The layers, lowest first. A folder may import its own layer's folders and every lower layer's,
 * except where `forbidden` says otherwise.
 */
const LAYERS: { folders: string[]; what: string }[] = [
  { folders: ['api', 'keys', 'shared', 'kube', 'federation'], what: 'the foundation: the contract, key formats, logging, the Kubernetes client, federation rules' },
  { folders: ['controller', 'token-server', 'client'], what: 'the two server programs, and the code the two user interfaces share' },
  { folders: ['console'], what: 'the web console' },
  { folders: ['cli'], what: 'the executable: starts every program, and the kubectl plugin' },
];

/** Imports the layers alone would allow, forbidden all the same. */
const FORBIDDEN: [string, string, string][] = [
  ['cli', 'console', 'only where the CLI starts the console (src/cli/main.ts, src/cli/plugin/commands/console.ts)'],
  ['controller', 'token-server', 'the two programs share only the foundation (api, federation, ...)'],
  ['token-server', 'controller', 'the two programs share only the foundation (api, federation, ...)'],
  ['client', 'controller', 'the shared client code depends on the foundation only'],
  ['client', 'token-server', 'the shared client code depends on the foundation only'],
  ['controller', 'client', 'a server program does not use the user interfaces\' code'],
  ['token-server', 'client', 'a server program does not use the user interfaces\' code'],
];

/** Imports allowed across the layers' rules, each with why. */
const EXCEPTIONS: { from: string; to: string; why: string }[] = [
  { from: 'cli/main.ts', to: 'console/', why: '`apikey-operator console` starts the console' },
  { from: 'cli/plugin/commands/console.ts', to: 'console/', why: '`kubectl apikey console` starts the console' },
];

/** Folders outside src/ that only tests may import. */
const TEST_ONLY = ['test/support/', 'scripts/'];

/** The folder of src/ a path (relative to src/, posix) is in. */
const folderOf = (p: string): string => p.split('/')[0]!;
const layerOf = (folder: string): number => LAYERS.findIndex((l) => l.folders.includes(folder));

/** Why `from` (relative to src/) may not import `to` (relative to the repository root), or undefined. */
function forbiddenImport(from: string, to: string): string | undefined {
  const isTest = from.endsWith('.test.ts');
  if (!to.startsWith('src/')) {
    if (isTest && TEST_ONLY.some((t) => to.startsWith(t))) return undefined;
    return isTest ? `a test of src/ may import only ${TEST_ONLY.join(', ')} outside src/` : 'code of src/ never imports outside src/ (tests, scripts, benchmarks)';
  }
  const target = to.slice('src/'.length);
  const a = folderOf(from);
  const b = folderOf(target);
  if (a === b) return undefined;
  if (EXCEPTIONS.some((e) => from.startsWith(e.from) && target.startsWith(e.to))) return undefined;
  const la = layerOf(a);
  const lb = layerOf(b);
  if (la < 0) return `src/${a} has no layer: give it one in src/layering.test.ts and docs/development/layout.md`;
  if (lb < 0) return `src/${b} has no layer: give it one in src/layering.test.ts and docs/development/layout.md`;
  if (lb > la) return `src/${a} (${LAYERS[la]!.what}) may not import src/${b}, a higher layer`;
  const rule = FORBIDDEN.find(([x, y]) => x === a && y === b);
  if (rule) return `src/${a} may not import src/${b}: ${rule[2]}`;
  return undefined;
}

/** Every relative import (static, export-from and dynamic) of each file, resolved from the repository root. */
function importsOf(files: Map<string, string>): { from: string; to: string }[] {
  const out: { from: string; to: string }[] = [];
  for (const [from, text] of files) {
    for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
      if (!fileName.startsWith('.')) continue;
      out.push({ from, to: posix.normalize(posix.join('src', posix.dirname(from), fileName)) });
    }
  }
  return out;
}

/** Each forbidden import of `files` (paths relative to src/), one line each. */
function layeringViolations(files: Map<string, string>): string[] {
  return importsOf(files).flatMap(({ from, to }) => {
    const why = forbiddenImport(from, to);
    return why ? [`src/${from} imports ${to}: ${why}`] : [];
  });
}

function sourceFiles(dir: string, out = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sourceFiles(p, out);
    else if (e.name.endsWith('.ts')) out.set(relative(SRC, p).split(sep).join('/'), readFileSync(p, 'utf8'));
  }
  return out;
}

describe('the layers of src/', () => {
  it('give every folder of src/ a layer', () => {
    const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(folders.filter((f) => layerOf(f) < 0)).toEqual([]);
    expect(folders).toEqual(expect.arrayContaining(['cli', 'client', 'console', 'controller', 'token-server']));
  });

  it('hold: no module imports across a forbidden boundary', () => {
    const files = sourceFiles(SRC);
    expect(files.size).toBeGreaterThan(100);
    expect(importsOf(files).length).toBeGreaterThan(500);
    expect(layeringViolations(files)).toEqual([]);
  });

  it('are written down in docs/development/layout.md', () => {
    const layout = readFileSync(join(ROOT, 'docs/development/layout.md'), 'utf8');
    for (const l of LAYERS) for (const f of l.folders) expect(layout, f).toContain(`src/${f}`);
    expect(layout).toContain('src/layering.test.ts');
  });

  it('name each kind of forbidden import', () => {
    const files = new Map<string, string>([
      ['console/server.ts', "import { x } from '../cli/plugin/index.ts';\n// import { y } from '../cli/z.ts';\nconst s = \"import '../cli/q.ts'\";"],
      ['cli/plugin/commands/list.ts', "import { LocalSignIn } from '../../../console/local.ts';"],
      ['cli/plugin/commands/console.ts', "const { runConsole } = await import('../../../console/main.ts');"],
      ['controller/x.ts', "export { y } from '../token-server/keys.ts';"],
      ['token-server/y.ts', "import type { A } from '../controller/a.ts';\nimport { B } from '../api/index.ts';"],
      ['kube/client.ts', "import { z } from '../client/oauth.ts';"],
      ['client/oauth.ts', "import { w } from '../console/sessions.ts';"],
      ['console/pages/badges.ts', "import { getCondition } from '../../controller/conditions.ts';"],
      ['console/oidc.test.ts', "import { p } from '../../test/support/oidc-provider.ts';"],
      ['console/oidc.ts', "import { p } from '../../test/support/oidc-provider.ts';"],
      ['newfolder/a.ts', "import { k } from '../keys/format.ts';"],
    ]);
    expect(layeringViolations(files)).toEqual([
      'src/console/server.ts imports src/cli/plugin/index.ts: src/console (the web console) may not import src/cli, a higher layer',
      'src/cli/plugin/commands/list.ts imports src/console/local.ts: src/cli may not import src/console: only where the CLI starts the console (src/cli/main.ts, src/cli/plugin/commands/console.ts)',
      'src/controller/x.ts imports src/token-server/keys.ts: src/controller may not import src/token-server: the two programs share only the foundation (api, federation, ...)',
      'src/token-server/y.ts imports src/controller/a.ts: src/token-server may not import src/controller: the two programs share only the foundation (api, federation, ...)',
      'src/kube/client.ts imports src/client/oauth.ts: src/kube (the foundation: the contract, key formats, logging, the Kubernetes client, federation rules) may not import src/client, a higher layer',
      'src/client/oauth.ts imports src/console/sessions.ts: src/client (the two server programs, and the code the two user interfaces share) may not import src/console, a higher layer',
      'src/console/oidc.ts imports test/support/oidc-provider.ts: code of src/ never imports outside src/ (tests, scripts, benchmarks)',
      'src/newfolder/a.ts imports src/keys/format.ts: src/newfolder has no layer: give it one in src/layering.test.ts and docs/development/layout.md',
    ]);
  });
});
