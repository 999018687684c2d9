/**
 * npm run build:plugin-sea [-- --out DIR]: the kubectl plugin as one
 * executable with Node.js inside (Node's single executable applications),
 * for people without Node.js. It bundles src/cli/sea.ts into one CommonJS
 * file (esbuild), turns it into a SEA blob (node --experimental-sea-config),
 * and injects that into a copy of the running Node binary (postject). The
 * result is cached by the hash of its inputs in
* ~/.cache/apikey-operator/plugin-sea/ (as the test cluster's binaries), so a second build (or a test) takes
 * no time. Prints the executable's path as its last line (default:
 * dist/sea/kubectl-apikey). The same file is kubectl_complete-apikey when
 * linked under that name.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');
/** The fuse Node's single executables look for (documented in Node's single-executable-applications). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  }).sort();
}

/** What the executable is made of: the sources, the locked dependencies, this script and the Node binary's version. */
function inputHash(): string {
  const h = createHash('sha256');
  for (const file of [...sourceFiles(join(ROOT, 'src')), join(ROOT, 'package-lock.json'), import.meta.filename]) {
    h.update(relative(ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  h.update(`${process.version} ${process.platform} ${process.arch}`);
  return h.digest('hex').slice(0, 16);
}

async function buildInto(dir: string): Promise<string> {
  const work = join(dir, 'work');
  mkdirSync(work, { recursive: true });
  const bundle = join(work, 'kubectl-apikey.cjs');
  await build({
    entryPoints: [join(ROOT, 'src', 'cli', 'sea.ts')],
    bundle: true, platform: 'node', format: 'cjs', target: 'node22', outfile: bundle, logLevel: 'warning',
    // Some dependencies read import.meta.url; in one CommonJS file it is the file's own URL.
    define: { 'import.meta.url': 'import_meta_url' },
    banner: { js: 'const import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
  });
  const blob = join(work, 'sea.blob');
  const config = join(work, 'sea-config.json');
  writeFileSync(config, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true }));
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exe = join(work, 'kubectl-apikey');
  copyFileSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  execFileSync(process.execPath, [
    join(ROOT, 'node_modules', 'postject', 'dist', 'cli.js'), exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE,
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  const final = join(dir, 'kubectl-apikey');
  renameSync(exe, final);
  rmSync(work, { recursive: true, force: true });
  return final;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string', default: join(ROOT, 'dist', 'sea') } } });
  const cacheBase = process.env.APIKEY_OPERATOR_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'apikey-operator');
  const cached = join(cacheBase, 'plugin-sea', inputHash());
  const built = join(cached, 'kubectl-apikey');
  if (!existsSync(built)) {
    rmSync(cached, { recursive: true, force: true });
    await buildInto(cached);
  } else {
    process.stderr.write(`using the cached build ${built}\n`);
  }
  const out = resolve(values.out);
  mkdirSync(out, { recursive: true });
  const target = join(out, 'kubectl-apikey');
  rmSync(target, { force: true });
  copyFileSync(built, target);
  chmodSync(target, 0o755);
  process.stdout.write(`${target}\n`);
}

await main();

