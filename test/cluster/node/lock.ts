/**
 * One node cluster per machine: the kubelet and its cgroup root are
 * machine-wide. A lock file in /run names the cluster's folder and the pid of
 * its namespace holder; a lock whose holder is gone (a crash, a reboot) is
 * stale and taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { HOLDER } from './namespace.ts';
import { isRunning } from '../processes.ts';

export const LOCK_FILE = '/run/apikey-operator-test-node.json';

interface Lock { dir: string; holderPid?: number }

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
    const live = lock?.holderPid !== undefined && isRunning({ pid: lock.holderPid, binary: HOLDER.binary });
    if (lock && (live || lock.holderPid === undefined) && lock.dir !== dir) {
      throw new NodeClusterRunningError(
        `another node cluster is running on this machine, in ${lock.dir} (only one can: the kubelet uses ` +
        `machine-wide paths). Stop it first: npm run cluster:down -- --dir ${lock.dir}`,
      );
    }
    rmSync(LOCK_FILE, { force: true });
  }
}

/** Records the holder's pid once it runs, so that a later `up` can tell a live lock from a stale one. */
export function recordNodeHolder(dir: string, holderPid: number): void {
  writeFileSync(LOCK_FILE, JSON.stringify({ dir, holderPid } satisfies Lock));
}

export function releaseNodeLock(dir: string): void {
  if (readLock()?.dir === dir) rmSync(LOCK_FILE, { force: true });
}
