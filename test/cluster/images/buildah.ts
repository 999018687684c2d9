/**
 * buildah with an image store of the project's own under the cache folder, so
 * that building the test images leaves nothing in the machine's
 * /var/lib/containers, and OCI archives as what leaves that store: the node's
 * container runtime imports them, nothing is ever pushed to a registry.
 */
import { renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cacheBase } from '../binaries.ts';
import { run, type CommandOptions } from '../command.ts';

export function imagesDir(): string {
  return join(cacheBase(), 'images');
}

export function buildah(args: string[], opts: CommandOptions = {}): Promise<string> {
  const store = join(imagesDir(), 'store');
  return run('buildah', ['--root', join(store, 'root'), '--runroot', join(store, 'run'), ...args], opts);
}

/** The image's ID, or undefined when the store does not hold it. */
export async function imageId(name: string): Promise<string | undefined> {
  try {
    return (await buildah(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', name])).trim();
  } catch {
    return undefined;
  }
}

/** Writes `image` to `file` as an OCI archive whose index names it `reference`, atomically. */
export async function saveArchive(image: string, file: string, reference: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  await buildah(['push', '--quiet', image, `oci-archive:${tmp}:${reference}`]);
  renameSync(tmp, file);
}

/** A container from nothing with `files` (host path to image path) in it, committed as `image`. */
export async function commitFromScratch(image: string, copies: [string, string][], config: string[]): Promise<void> {
  const container = (await buildah(['from', '--quiet', 'scratch'])).trim();
  try {
    for (const [from, to] of copies) await buildah(['copy', '--quiet', container, from, to]);
    if (config.length) await buildah(['config', ...config, container]);
    await buildah(['commit', '--quiet', '--rm', container, image]);
  } catch (err) {
    await buildah(['rm', container]).catch(() => undefined);
    throw err;
  }
}
