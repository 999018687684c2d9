/**
 * The operator's image, built with buildah from the repository's own
 * Dockerfile into an OCI archive, and cached by a hash of everything the build
 * reads: the Dockerfile, .dockerignore, the files of the build context and the
 * base image. `cluster:up --node` loads the latest archive into the node.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { contextFiles, parseDockerIgnore } from '../../support/dockerfile.ts';
import { ROOT } from '../../support/paths.ts';
import { run } from '../command.ts';
import { ensureBaseImage } from './base-image.ts';
import { buildah, imageId, imagesDir, saveArchive } from './buildah.ts';

/** The name Pods use for the image on the test node (`image: apikey-operator:dev`). */
export const OPERATOR_IMAGE = 'docker.io/library/apikey-operator:dev';
const LATEST = 'operator-latest';

export interface BuiltImage {
  archive: string;
  /** Whether this call built it (false: the cache held it already). */
  built: boolean;
  seconds: number;
  bytes: number;
}

async function inputsHash(root: string, baseId: string): Promise<string> {
  const h = createHash('sha256');
  const ignore = readFileSync(join(root, '.dockerignore'), 'utf8');
  h.update(readFileSync(join(root, 'Dockerfile'))).update(ignore).update(baseId);
  for (const file of contextFiles(root, parseDockerIgnore(ignore))) {
    h.update(`\0${file}\0`).update(readFileSync(join(root, file)));
  }
  return Promise.resolve(h.digest('hex').slice(0, 16));
}

/**
 * Build-time settings for `npm ci` inside the build, mounted and never baked
 * into the image: the registry this machine's npm uses, the machine's CA bundle
 * (a TLS-inspecting proxy may sign the registry's certificate), and npm's cache.
 */
async function npmBuildConfig(work: string): Promise<string[]> {
  const get = async (key: string) => (await run('npm', ['config', 'get', key])).trim();
  const lines = [`registry=${await get('registry')}`, 'prefer-offline=true', 'cache=/npm-cache'];
  const cache = await get('cache');
  mkdirSync(cache, { recursive: true });
  const mounts = ['--volume', `${cache}:/npm-cache`];
  const bundle = '/etc/ssl/certs/ca-certificates.crt';
  if (existsSync(bundle)) {
    lines.push('cafile=/run/host-ca-certificates.crt');
    mounts.push('--volume', `${bundle}:/run/host-ca-certificates.crt:ro`);
  }
  writeFileSync(join(work, 'npmrc'), `${lines.join('\n')}\n`);
  return [...mounts, '--volume', `${join(work, 'npmrc')}:/usr/local/etc/npmrc:ro`];
}

/**
 * Another source tree to build instead of the working tree's (a released version's, for the upgrade
 * tests): its own Dockerfile and context, its archive named apart from the working tree's (which the
 * cache prunes) and never made the latest.
 */
export interface OtherTree {
  root: string;
  /** In the archive's file name: apikey-operator-<label>-<hash>.oci.tar. */
  label: string;
  /** The name the archive's index gives the image. */
  reference: string;
}

/**
 * Builds the image unless an archive of the same inputs exists; either way it becomes the latest.
 * With `other`, builds that tree's image the same way, cached by its own inputs.
 */
export async function buildOperatorImage(log: (line: string) => void, other?: OtherTree): Promise<BuiltImage> {
  const started = Date.now();
  const root = other?.root ?? ROOT;
  const base = await ensureBaseImage(log);
  const hash = await inputsHash(root, await imageId(base) ?? '');
  const archive = join(imagesDir(), `apikey-operator-${other ? `${other.label}-` : ''}${hash}.oci.tar`);
  let built = false;
  if (!existsSync(archive)) {
    log(`building the image from ${join(root, 'Dockerfile')} with buildah ...`);
    const budStarted = Date.now();
    const work = mkdtempSync(join(imagesDir(), 'build-'));
    const tag = `localhost/apikey-operator-build:${hash}`;
    try {
      await buildah(['bud', '--pull=never', '--network=host', '--layers=false', ...await npmBuildConfig(work),
        '--file', join(root, 'Dockerfile'), '--tag', tag, root], { timeoutMs: 1_800_000 });
      await saveArchive(tag, archive, other?.reference ?? OPERATOR_IMAGE);
      log(`image built in ${Math.round((Date.now() - budStarted) / 1000)}s`);
    } finally {
      await buildah(['rmi', tag]).catch(() => undefined);
      rmSync(work, { recursive: true, force: true });
    }
    built = true;
  }
  if (!other) {
    mkdirSync(imagesDir(), { recursive: true });
    writeFileSync(join(imagesDir(), LATEST), archive);
    pruneArchives(archive);
  }
  return { archive, built, seconds: (Date.now() - started) / 1000, bytes: statSync(archive).size };
}

/** Keeps the cache from growing by an image per change: the latest archive and the two before it stay. */
function pruneArchives(latest: string): void {
  const archives = readdirSync(imagesDir()).filter((f) => /^apikey-operator-[0-9a-f]{16}\.oci\.tar$/.test(f)).map((f) => join(imagesDir(), f))
    .filter((f) => f !== latest).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const old of archives.slice(2)) rmSync(old, { force: true });
}

/** The archive `image:build` made last, if it is still there. */
export function latestOperatorArchive(): string | undefined {
  try {
    const archive = readFileSync(join(imagesDir(), LATEST), 'utf8').trim();
    return existsSync(archive) ? archive : undefined;
  } catch {
    return undefined;
  }
}
