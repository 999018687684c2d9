/** What the kubelet does that a test without a node plays itself. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes a Secret's keys the way the kubelet's atomic writer updates a Secret volume: into a fresh
 * timestamped directory, made current by renaming a new `..data` symlink over the old one, with
 * each key a symlink through `..data`. A reader sees the old files or the new ones, never a mix.
 */
export function projectSecret(dir: string, data: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  const version = `..${new Date().toISOString().replace(/[-:.]/g, '_')}.${randomBytes(4).toString('hex')}`;
  mkdirSync(join(dir, version));
  for (const [key, value] of Object.entries(data)) writeFileSync(join(dir, version, key), value, { mode: 0o440 });
  const previous = existsSync(join(dir, '..data')) ? readlinkSync(join(dir, '..data')) : undefined;
  symlinkSync(version, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const key of Object.keys(data)) if (!existsSync(join(dir, key))) symlinkSync(join('..data', key), join(dir, key));
  if (previous) rmSync(join(dir, previous), { recursive: true, force: true });
}
