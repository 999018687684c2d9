/**
 * npm run image:build
 *
 * Builds the operator's image from the Dockerfile with buildah (or reuses the
 * cached build of the same inputs) and prints the path of its OCI archive as
 * the last line of its output, for scripts: `archive=$(npm run -s image:build | tail -1)`.
 */
import { buildOperatorImage } from './operator-image.ts';

try {
  const image = await buildOperatorImage((line) => console.error(line));
  console.error(`${image.built ? 'built' : 'cached'}: ${(image.bytes / 1048576).toFixed(1)} MiB, ${image.seconds.toFixed(1)}s`);
  console.log(image.archive);
} catch (err) {
  console.error(err);
  process.exit(1);
}
