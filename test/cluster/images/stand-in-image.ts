/**
 * The third-party images the examples use (curlimages/curl in the Job
 * example), as OCI archives for the test node. Pulled where a registry serves
 * them; where none is reachable, a local stand-in is made under the same name:
 * the Dockerfile's Debian base image with the same tool from Debian's
 * packages, annotated as a stand-in. Cached by name, packages and base image.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BASE_IMAGE, ensureBaseImage } from './base-image.ts';
import { buildah, imageId, imagesDir, saveArchive } from './buildah.ts';

export interface StandIn {
  /** The full name the example uses, e.g. docker.io/curlimages/curl:8.11.1. */
  image: string;
  /** The Debian packages that provide what the example runs. */
  packages: string[];
  entrypoint: string[];
  user: string;
}

export async function ensureExampleImageArchive(s: StandIn, log: (line: string) => void): Promise<string> {
  await ensureBaseImage(log);
  const key = createHash('sha256').update(JSON.stringify(s)).update(await imageId(BASE_IMAGE) ?? '').digest('hex').slice(0, 12);
  const file = s.image.replace(/^.*\//, '').replace(/[^\w.-]/g, '-');
  const archive = join(imagesDir(), `example-${file}-${key}.oci.tar`);
  if (existsSync(archive)) return archive;
  mkdirSync(imagesDir(), { recursive: true });
  try {
    await buildah(['pull', '--quiet', s.image], { timeoutMs: 120_000 });
  } catch {
    log(`${s.image} cannot be pulled here; making a stand-in under that name from Debian's ${s.packages.join(', ')}`);
    await commitStandIn(s);
  }
  try {
    await saveArchive(s.image, archive, s.image);
  } finally {
    await buildah(['rmi', s.image]).catch(() => undefined);
  }
  return archive;
}

async function commitStandIn(s: StandIn): Promise<void> {
  const container = (await buildah(['from', '--quiet', '--pull=never', BASE_IMAGE])).trim();
  try {
    // Debian's mirror, as the base image's apt sources name it; the lists go again afterwards.
    await buildah(['run', '--network=host', container, '--', 'sh', '-c',
      `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${s.packages.join(' ')} >/dev/null ` +
      '&& rm -rf /var/lib/apt/lists/*'], { timeoutMs: 600_000 });
    await buildah(['config', '--cmd', '[]', container]);
    await buildah(['config', '--entrypoint', JSON.stringify(s.entrypoint), '--user', s.user,
      '--annotation', `dev.apikeys.test.stand-in=debian ${s.packages.join(' ')}`, container]);
    await buildah(['commit', '--quiet', '--rm', container, s.image]);
  } catch (err) {
    await buildah(['rm', container]).catch(() => undefined);
    throw err;
  }
}
