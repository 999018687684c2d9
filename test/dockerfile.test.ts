/**
 * The Dockerfile builds a hardened image of the CLI, checked without a Docker engine: read as
 * `docker build` reads it, and reproduced stage by stage in a temporary folder (the same COPY and
 * RUN steps, on this repository's Node 24, with npm's cache preferred) so that the image's
 * entrypoint can be run.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { V1Deployment } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR } from '../scripts/render-manifests.ts';
import {
  contextFiles, parseCopy, parseDockerfile, parseDockerIgnore, reproduceBuild, type Stage,
} from './support/dockerfile.ts';
import { objectsOfKind, renderChart } from './support/helm.ts';
import { ROOT } from './support/paths.ts';
import { SOFTHSM_MODULE } from './support/softhsm.ts';

const exec = promisify(execFile);
/** V8's heap sizing, which the image starts the programs with (docs/development/benchmarks.md, "Ten thousand keys"). */
const NODE_FLAGS = ['--max-semi-space-size=2', '--heap-growing-percent=20', '--optimize-for-size'];
const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const ignore = parseDockerIgnore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
const final = stages.at(-1) as Stage;
const instructions = (stage: Stage, keyword: string): string[] =>
  stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

describe('the Dockerfile', () => {
  it('builds every stage from the official Node.js 24 image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) expect(s.image).toMatch(/^node:24-(bookworm-slim|alpine)$/);
  });

  it('runs as the numeric non-root user the Helm chart expects', () => {
    const users = instructions(final, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1) ?? '';
    expect(user).toMatch(/^[1-9][0-9]*:[1-9][0-9]*$/);
    const values = parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as { securityContext: { runAsUser: number; runAsGroup: number } };
    expect(user).toBe(`${values.securityContext.runAsUser}:${values.securityContext.runAsGroup}`);
  });

  it('has no HEALTHCHECK: Kubernetes probes the programs', () => {
    expect(stages.flatMap((s) => instructions(s, 'HEALTHCHECK'))).toEqual([]);
  });

  it('starts the CLI, the controller by default', () => {
    expect(JSON.parse(instructions(final, 'ENTRYPOINT').at(-1) ?? 'null')).toEqual(['node', ...NODE_FLAGS, 'dist/src/cli/main.js']);
    expect(JSON.parse(instructions(final, 'CMD').at(-1) ?? 'null')).toEqual(['controller']);
  });

  it('puts the compiled program, production node_modules, package.json and the CRDs in the final stage', () => {
    const copies = instructions(final, 'COPY').map(parseCopy);
    const dest = (d: string) => copies.filter((c) => c.dest.replace(/^\.\//, '').replace(/\/$/, '') === d);
    expect(dest('dist').map((c) => c.from)).toEqual(['build']);
    expect(dest('node_modules').map((c) => c.from)).toEqual(['deps']);
    expect(dest('crds')).toHaveLength(1);
    expect(copies.some((c) => c.sources.includes('package.json') && c.from === undefined)).toBe(true);
  });

  it('installs production dependencies with npm ci --omit=dev, none of which needs an install script but the PKCS#11 addon, which it compiles', () => {
    const deps = stages.find((s) => s.name === 'deps');
    const runs = deps ? instructions(deps, 'RUN') : [];
    expect(runs.some((r) => /npm ci .*--omit=dev.*--ignore-scripts/.test(r))).toBe(true);
    // --ignore-scripts is safe only while no production dependency has an install script.
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean; hasInstallScript?: boolean }>;
    };
    const withScripts = Object.entries(lock.packages).filter(([, p]) => p.hasInstallScript && !p.dev && !p.optional).map(([k]) => k);
    expect(withScripts).toEqual([]);
    // The one optional exception, the PKCS#11 addon: compiled in the deps stage (docs/operations/hsm.md)
    // against the base image's Node.js headers, and loaded once there so that a failed build fails the build.
    const optionalWithScripts = Object.entries(lock.packages).filter(([, p]) => p.hasInstallScript && !p.dev && p.optional).map(([k]) => k);
    expect(optionalWithScripts).toEqual(['node_modules/pkcs11js']);
    expect(runs.some((r) => /npm rebuild pkcs11js\b/.test(r) && r.includes(`require('pkcs11js')`))).toBe(true);
    expect(instructions(deps as Stage, 'ENV')).toContain('npm_config_nodedir=/usr/local');
    expect(lock.packages['node_modules/node']?.dev).toBe(true);
  });

  it('installs the compilers for the addon in the deps stage only: the final stage has no RUN and copies nothing else from it', () => {
    const apt = stages.map((s) => [s.name ?? '(final)', instructions(s, 'RUN').filter((r) => r.includes('apt-get'))] as const).filter(([, r]) => r.length);
    expect(apt.map(([name]) => name)).toEqual(['deps']);
    const install = apt[0]?.[1].join(' ') ?? '';
    expect(install).toMatch(/apt-get install -y --no-install-recommends python3 make g\+\+/);
    expect(install).toContain('rm -rf /var/lib/apt/lists/*');
    expect(instructions(final, 'RUN')).toEqual([]);
    const fromDeps = instructions(final, 'COPY').map(parseCopy).filter((c) => c.from === 'deps');
    expect(fromDeps.map((c) => c.sources)).toEqual([['/app/node_modules']]);
  });

  it('carries OCI labels', () => {
    const labels = instructions(final, 'LABEL').join(' ');
    for (const key of ['title', 'description', 'version', 'licenses']) expect(labels).toContain(`org.opencontainers.image.${key}=`);
  });

  it('copies only sources that exist and that .dockerignore lets into the build context', () => {
    const context = contextFiles(ROOT, ignore);
    const sources = stages.flatMap((s) => instructions(s, 'COPY').map(parseCopy)).filter((c) => c.from === undefined).flatMap((c) => c.sources);
    expect(sources.length).toBeGreaterThan(3);
    for (const src of sources) {
      expect(existsSync(join(ROOT, src)), src).toBe(true);
      expect(context.some((f) => f === src || f.startsWith(`${src}/`)), `${src} is in the build context`).toBe(true);
    }
  });

  it.each([
    ['keeps out', 'node_modules/jose/package.json'], ['keeps out', 'dist/src/cli/main.js'], ['keeps out', '.git/HEAD'],
    ['keeps out', 'test/chart.test.ts'], ['keeps out', 'src/keys/format.test.ts'], ['keeps out', 'charts/apikey-operator/values.yaml'],
    ['keeps out', '.env'], ['lets in', 'src/cli/main.ts'], ['lets in', 'package-lock.json'], ['lets in', 'crds/apikeys.dev_apikeys.yaml'],
  ])('.dockerignore %s %s', (verdict, path) => {
    expect(ignore.excludes(path)).toBe(verdict === 'keeps out');
  });
});

describe('the image, reproduced stage by stage in a temporary folder', () => {
  const work = mkdtempSync(join(tmpdir(), 'image-'));
  let app = '';
  let env: Record<string, string> = {};
  // As the ENTRYPOINT runs it, so Node.js must accept its flags.
  const run = async (args: string[]) => exec(process.execPath, [...NODE_FLAGS, 'dist/src/cli/main.js', ...args], {
    cwd: app, env: { ...process.env, ...env }, encoding: 'utf8',
  });

  beforeAll(async () => {
    // The addon compiles against this machine's Node.js headers (npm's nodedir), as the image's against its own.
    const nodedir = (await exec('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' })).stdout.trim();
    const built = await reproduceBuild(stages, ROOT, contextFiles(ROOT, ignore), work, {
      npm_config_prefer_offline: 'true', ...nodedir && nodedir !== 'undefined' ? { npm_config_nodedir: nodedir } : {},
    });
    app = built.stageDir(final);
    env = built.env;
  }, 300_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('holds production dependencies only: no node binary package, no TypeScript, no test tools', () => {
    for (const dep of ['@kubernetes/client-node', 'jose', 'pino', 'yaml']) expect(existsSync(join(app, 'node_modules', dep)), dep).toBe(true);
    for (const dev of ['node', 'typescript', 'vitest', 'eslint']) expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    expect(existsSync(join(app, 'crds', 'apikeys.dev_apikeys.yaml'))).toBe(true);
  });

  it('carries the compiled PKCS#11 addon, which loads a real PKCS#11 module (SoftHSM) and lists its slots', async () => {
    const softhsmConf = join(work, 'softhsm2.conf');
    mkdirSync(join(work, 'tokens'));
    writeFileSync(softhsmConf, `directories.tokendir = ${join(work, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    const addon = join(app, 'node_modules', 'pkcs11js', 'build', 'Release', 'pkcs11.node');
    expect(existsSync(addon)).toBe(true);
    // No object files or compiler leftovers beside it.
    expect(existsSync(join(app, 'node_modules', 'pkcs11js', 'build', 'Release', 'obj.target'))).toBe(false);
    const probe = `const p = new (require('pkcs11js').PKCS11)(); p.load(${JSON.stringify(SOFTHSM_MODULE)}); p.C_Initialize();
console.log(JSON.stringify({ manufacturer: p.C_GetInfo().manufacturerID.trim(), slots: p.C_GetSlotList(false).length })); p.C_Finalize();`;
    const { stdout } = await exec(process.execPath, ['-e', probe], { cwd: app, encoding: 'utf8', env: { ...process.env, SOFTHSM2_CONF: softhsmConf } });
    expect(JSON.parse(stdout)).toEqual({ manufacturer: 'SoftHSM', slots: 1 });
  });

  it('ships the compiled program without its tests and test fixtures', () => {
    const files = readdirSync(join(app, 'dist'), { recursive: true, encoding: 'utf8' });
    expect(files).toContain(join('src', 'token-server', 'server.js'));
    expect(files.filter((f) => /\.test\.js$|fixtures\.js$/.test(f))).toEqual([]);
  });

  it('prints usage naming the controller and token-server commands from its entrypoint', async () => {
    const { stdout } = await run(['--help']);
    expect(stdout).toContain('controller');
    expect(stdout).toContain('token-server');
  });

  it('accepts every flag the Helm chart passes it, in every mode', async () => {
    const objects = [
      ...await renderChart('ako', 'ops', { watchNamespaces: ['a'], audiences: ['x'] }),
      ...await renderChart('ako', 'ops', { tokenServer: { mode: 'deployment' } }),
    ];
    const containers = objectsOfKind<V1Deployment>(objects, 'Deployment').flatMap((d) => d.spec?.template.spec?.containers ?? []);
    const flagsBy = new Map<string, Set<string>>();
    for (const c of containers) {
      const [command = '', ...args] = c.args ?? [];
      for (const a of args) flagsBy.set(command, (flagsBy.get(command) ?? new Set()).add(a.split('=')[0] ?? a));
    }
    expect([...flagsBy.keys()].sort()).toEqual(['controller', 'token-server']);
    for (const [command, flags] of flagsBy) {
      const { stdout } = await run([command, '--help']);
      for (const f of flags) expect(stdout, `${command} ${f}`).toMatch(new RegExp(`^\\s+${f}(?=\\s)`, 'm'));
    }
  });
});
