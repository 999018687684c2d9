/**
 * npm run image:build [-- --previous-release]
 *
 * Builds the operator's image from the Dockerfile with buildah (or reuses the
 * cached build of the same inputs) and prints the path of its OCI archive as
 * the last line of its output, for scripts: `archive=$(npm run -s image:build | tail -1)`.
 * With --previous-release: the image of the release the upgrade tests start
 * from (test/upgrade/previous-release.json), built from its own source tree.
 */
import { buildOperatorImage } from './operator-image.ts';
import { buildReleaseImage } from './release-image.ts';

try {
  const log = (line: string) => console.error(line);
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--previous-release');
  if (unknown.length) throw new Error(`unknown argument ${unknown.join(' ')} (usage: image:build [-- --previous-release])`);
  const image = args.includes('--previous-release') ? await buildReleaseImage(log) : await buildOperatorImage(log);
  console.error(`${image.built ? 'built' : 'cached'}: ${(image.bytes / 1048576).toFixed(1)} MiB, ${image.seconds.toFixed(1)}s`);
  console.log(image.archive);
} catch (err) {
  console.error(err instanceof Error ? `error: ${err.message}` : err);
  process.exit(1);
}
