/**
 * The Dockerfile's base image, node:24-bookworm-slim, in the project's image
 * store. It is pulled when a registry serves it. Where none is reachable, a
 * local stand-in is assembled under the same name from what this machine can
 * reach: Debian bookworm's packages (debootstrap --variant=minbase, from the
 * mirror the machine's apt sources name) and the Node.js 24 binary and headers
 * of the `node` npm package (the official image carries both, in /usr/local,
 * and the Dockerfile compiles the PKCS#11 addon against those headers), with
 * npm from the npm registry. The Dockerfile then
 * builds unchanged, exactly as Docker would build it.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../support/paths.ts';
import { CommandError, run } from '../command.ts';
import { buildah, commitFromScratch, imageId, imagesDir } from './buildah.ts';

/** The name buildah resolves the Dockerfile's `FROM node:24-bookworm-slim` to. */
export const BASE_IMAGE = 'docker.io/library/node:24-bookworm-slim';
/** npm as the Node.js 24 images ship it. */
export const NPM_VERSION = '11.19.1';
const STAND_IN_LABEL = 'dev.apikeys.test.stand-in';

function nodePackage(): { binary: string; headers: string; version: string } {
  const dir = join(ROOT, 'node_modules', 'node');
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string };
  if (!version.startsWith('24.')) throw new Error(`the node npm package is ${version}, not Node.js 24: run npm ci`);
  const headers = join(dir, 'node_modules', `node-${process.platform}-${process.arch}`, 'include', 'node');
  if (!existsSync(join(headers, 'node_api.h'))) throw new Error(`the node npm package has no headers in ${headers}: run npm ci`);
  return { binary: join(dir, 'bin', 'node'), headers, version };
}

/** What the stand-in is made of: a different recipe makes a different stand-in. */
function standInKey(): string {
  return `bookworm-minbase node-${nodePackage().version} node-headers npm-${NPM_VERSION}`;
}

/** Ensures the base image is in the store; says which one it is. */
export async function ensureBaseImage(log: (line: string) => void): Promise<string> {
  if (await imageId(BASE_IMAGE)) {
    const label = (await buildah(['inspect', '--type', 'image', '--format', `{{index .ImageAnnotations "${STAND_IN_LABEL}"}}`, BASE_IMAGE])).trim();
    if (label === '' || label === '<no value>' || label === standInKey()) return BASE_IMAGE;
    log(`the local stand-in for ${BASE_IMAGE} is out of date (${label}); assembling it again`);
  } else {
    try {
      await buildah(['pull', '--quiet', BASE_IMAGE], { timeoutMs: 120_000 });
      log(`pulled ${BASE_IMAGE}`);
      return BASE_IMAGE;
    } catch (err) {
      const said = err instanceof CommandError ? err.stderr.trim().split('\n').at(-1) : undefined;
      log(`${BASE_IMAGE} cannot be pulled here (${said?.slice(0, 300) ?? 'no registry answered'}).`);
    }
  }
  log(`Assembling a local stand-in under that name from Debian bookworm's packages and Node.js ${nodePackage().version} ` +
    `from the npm package 'node' (about a minute; cached in ${imagesDir()}).`);
  const started = Date.now();
  await assembleStandIn();
  log(`stand-in for ${BASE_IMAGE} assembled in ${Math.round((Date.now() - started) / 1000)}s`);
  return BASE_IMAGE;
}

/**
 * The machine's Debian mirror, read from its apt sources at run time: the
 * repository names none.
 */
export function debianMirror(): string {
  const files = ['/etc/apt/sources.list', ...listDir('/etc/apt/sources.list.d').map((f) => join('/etc/apt/sources.list.d', f))];
  for (const file of files.filter((f) => existsSync(f))) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        if (field('Types').includes('deb') && field('Suites').includes('bookworm')) {
          const uri = field('URIs')[0];
          if (uri) return uri;
        }
      }
    } else {
      for (const line of text.split('\n')) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/.exec(line.trim() + ' ');
        if (m?.[1]) return m[1];
      }
    }
  }
  throw new Error('no Debian bookworm mirror in the apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/): debootstrap needs one');
}

function listDir(dir: string): string[] {
  try { return readdirSync(dir); } catch { return []; }
}

async function assembleStandIn(): Promise<void> {
  const node = nodePackage();
  mkdirSync(imagesDir(), { recursive: true });
  const work = mkdtempSync(join(imagesDir(), 'stand-in-'));
  const rootfs = join(work, 'rootfs');
  try {
    await run('debootstrap', ['--variant=minbase', 'bookworm', rootfs, debianMirror()], { timeoutMs: 900_000 }).catch((err: unknown) => {
      throw new Error(`debootstrap (Debian package debootstrap) could not make the stand-in's root filesystem: ${String(err)}`);
    });
    // What the slim image leaves out: package lists and caches, and the device nodes a runtime provides.
    for (const dir of ['dev', 'var/lib/apt/lists', 'var/cache/apt', 'var/log']) {
      rmSync(join(rootfs, dir), { recursive: true, force: true });
      mkdirSync(join(rootfs, dir), { recursive: true });
    }
    const npmTarball = (await run('npm', ['pack', '--silent', `npm@${NPM_VERSION}`, '--pack-destination', work])).trim().split('\n').at(-1) ?? '';
    const npmDir = join(rootfs, 'usr/local/lib/node_modules/npm');
    mkdirSync(npmDir, { recursive: true });
    await run('tar', ['-xzf', join(work, npmTarball), '-C', npmDir, '--strip-components=1', '--no-same-owner']);
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(rootfs, 'usr/local/bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(rootfs, 'usr/local/bin/npx'));
    await commitFromScratch(BASE_IMAGE, [[rootfs, '/'], [node.binary, '/usr/local/bin/node'], [node.headers, '/usr/local/include/node']], [
      '--env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--env', `NODE_VERSION=${node.version}`,
      '--cmd', '["node"]',
      '--annotation', `${STAND_IN_LABEL}=${standInKey()}`,
    ]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
