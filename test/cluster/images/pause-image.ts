/**
 * The node's sandbox image: pause.c compiled statically, alone in an image.
 * containerd is told to use it for every Pod sandbox, so that no sandbox image
 * is ever pulled. Cached by the hash of pause.c.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../command.ts';
import { buildah, commitFromScratch, imagesDir, saveArchive } from './buildah.ts';

/** A name no registry serves: the runtime can only ever find it locally. */
export const PAUSE_IMAGE = 'localhost/apikey-operator-pause:1';

const source = join(dirname(fileURLToPath(import.meta.url)), 'pause.c');

export async function ensurePauseArchive(log: (line: string) => void): Promise<string> {
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
  const archive = join(imagesDir(), `pause-${hash}.oci.tar`);
  if (existsSync(archive)) return archive;
  mkdirSync(imagesDir(), { recursive: true });
  const work = mkdtempSync(join(imagesDir(), 'pause-'));
  try {
    await run('gcc', ['-static', '-Os', '-s', '-o', join(work, 'pause'), source]).catch((err: unknown) => {
      throw new Error(`building the sandbox image needs gcc and a static C library (Debian: gcc, libc6-dev): ${String(err)}`);
    });
    await commitFromScratch(PAUSE_IMAGE, [[join(work, 'pause'), '/pause']], ['--entrypoint', '["/pause"]', '--user', '65535:65535']);
    await saveArchive(PAUSE_IMAGE, archive, PAUSE_IMAGE);
    await buildah(['rmi', PAUSE_IMAGE]);
    log(`sandbox image built: ${archive}`);
    return archive;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
