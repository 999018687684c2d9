/**
 * One node cluster per machine: the node's cgroups are machine-wide. A lock
 * file in /run names the cluster's folder and its namespace holder (pid and
 * network namespace); a lock whose holder is gone (a crash, a reboot) is stale
 * and taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { namespaceOf } from './namespace.ts';

export const LOCK_FILE = '/run/apikey-operator-test-node.json';

interface Lock { dir: string; holderPid?: number; netns?: string }

function readLock(): Lock | undefined {
  try {
    return JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as Lock;
  } catch {
    return undefined;
  }
}

export class NodeClusterRunningError extends Error {}

/** Takes the lock for `dir`, or refuses, naming the cluster that holds it and how to stop it. */
export function acquireNodeLock(dir: string): void {
  for (;;) {
    try {
      writeFileSync(LOCK_FILE, JSON.stringify({ dir } satisfies Lock), { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const lock = readLock();
    // The pid alone could have been reused since; the namespace it holds could not.
    const live = lock?.holderPid !== undefined && namespaceOf(lock.holderPid, 'net') === lock.netns;
    if (lock && (live || lock.holderPid === undefined) && lock.dir !== dir) {
      throw new NodeClusterRunningError(
        `another node cluster is running on this machine, in ${lock.dir} (only one can: the node's cgroups ` +
        `are machine-wide). Stop it first: npm run cluster:down -- --dir ${lock.dir}`,
      );
    }
    rmSync(LOCK_FILE, { force: true });
  }
}

/** Records the holder's pid once it runs, so that a later `up` can tell a live lock from a stale one. */
export function recordNodeHolder(dir: string, holderPid: number, netns: string): void {
  writeFileSync(LOCK_FILE, JSON.stringify({ dir, holderPid, netns } satisfies Lock));
}

export function releaseNodeLock(dir: string): void {
  if (readLock()?.dir === dir) rmSync(LOCK_FILE, { force: true });
}
