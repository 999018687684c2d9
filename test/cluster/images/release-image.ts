/**
 * The previous release, for the upgrade tests: its source tree, taken from
 * git (the tag, or the commit recorded in test/upgrade/previous-release.json
 * when a clone has no tags), unpacked once per machine under the cache folder,
 * and its image built from that tree by the same build as the working tree's
 * (operator-image.ts), cached by its inputs and kept apart from the working
 * tree's archives.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../support/paths.ts';
import { cacheBase } from '../binaries.ts';
import { run } from '../command.ts';
import { buildOperatorImage, type BuiltImage } from './operator-image.ts';

export const PREVIOUS_RELEASE_FILE = join(ROOT, 'test', 'upgrade', 'previous-release.json');

export interface PreviousRelease {
  /** The chart's appVersion and the image tag of that release (0.1.0). */
  version: string;
  tag: string;
  commit: string;
}

export function previousRelease(): PreviousRelease {
  return JSON.parse(readFileSync(PREVIOUS_RELEASE_FILE, 'utf8')) as PreviousRelease;
}

/** The release's commit: its tag if this clone has it (and it names the recorded commit), else the recorded commit. */
export async function resolveRelease(release = previousRelease(), root = ROOT): Promise<string> {
  const commitOf = (rev: string) => run('git', ['-C', root, 'rev-parse', '--verify', '--quiet', `${rev}^{commit}`]).then((o) => o.trim(), () => undefined);
  const tagged = await commitOf(`refs/tags/${release.tag}`);
  if (tagged !== undefined && tagged !== release.commit) {
    throw new Error(`the tag ${release.tag} names ${tagged}, but ${PREVIOUS_RELEASE_FILE} records ${release.commit}: one of them is wrong`);
  }
  const commit = tagged ?? await commitOf(release.commit);
  if (commit === undefined) {
    throw new Error(`the previous release ${release.tag} is not in this clone: neither the tag ${release.tag} nor the commit ${release.commit} ` +
      `(from ${PREVIOUS_RELEASE_FILE}) exists. Fetch it (git fetch --tags, or a clone with full history) to run the upgrade tests.`);
  }
  return commit;
}

/** The release's source tree (git archive of its commit), unpacked once under the cache folder. */
export async function releaseTree(release = previousRelease()): Promise<string> {
  const commit = await resolveRelease(release);
  const dir = join(cacheBase(), 'releases', commit);
  if (existsSync(dir)) return dir;
  mkdirSync(join(cacheBase(), 'releases'), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    const tar = join(tmp, '..', `${commit}.tar.tmp-${process.pid}`);
    await run('git', ['-C', ROOT, 'archive', '--format=tar', `--output=${tar}`, commit]);
    await run('tar', ['-xf', tar, '-C', tmp]);
    rmSync(tar, { force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return dir;
}

/** The release's image, built from its own tree and Dockerfile, named as its chart and manifests name it. */
export async function buildReleaseImage(log: (line: string) => void, release = previousRelease()): Promise<BuiltImage & { reference: string; tree: string }> {
  const tree = await releaseTree(release);
  const reference = `docker.io/library/apikey-operator:${release.version}`;
  const image = await buildOperatorImage(log, { root: tree, label: release.tag, reference });
  return { ...image, reference, tree };
}
