/**
 * The node's cgroups: one folder, CGROUP_ROOT, in each of the machine's cgroup
 * hierarchies, under which the kubelet puts every Pod. Teardown kills what is
 * left in it (containers outlive the kubelet and containerd by design) and
 * removes it, deepest folders first; nothing else is touched.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CGROUP_ROOT } from './config.ts';

/** The mount points of the machine's cgroup hierarchies (v1 controllers, and cgroup2 where mounted). */
export function cgroupHierarchies(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').flatMap((line) => {
    const [fields = '', fs = ''] = line.split(' - ');
    const mountPoint = fields.split(' ')[4] ?? '';
    const type = fs.split(' ')[0];
    return (type === 'cgroup' || type === 'cgroup2') && mountPoint.startsWith('/sys/fs/cgroup') ? [mountPoint] : [];
  });
}

export function cgroupRoots(): string[] {
  return cgroupHierarchies().map((h) => join(h, CGROUP_ROOT));
}

/** Creates the root in every v1 hierarchy (the kubelet refuses a cgroupRoot that is missing from one). */
export function createCgroupRoot(): void {
  for (const h of cgroupHierarchies()) {
    if (existsSync(join(h, 'cgroup.controllers'))) continue; // cgroup2: the kubelet does not use it in v1 mode
    const dir = join(h, CGROUP_ROOT);
    mkdirSync(dir, { recursive: true });
    // A new cpuset cgroup starts with no CPUs and no memory nodes; no task could join it.
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(join(dir, file)) && readFileSync(join(dir, file), 'utf8').trim() === '') {
        writeFileSync(join(dir, file), readFileSync(join(h, file), 'utf8'));
      }
    }
  }
}

function subtree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
  return [...children.flatMap((c) => subtree(join(dir, c.name))), dir];
}

function tasks(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** SIGKILLs every process in the node's cgroups until none is left, then removes the folders. */
export async function removeCgroupRoot(timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = cgroupRoots().flatMap(subtree);
    const pids = [...new Set(left.flatMap(tasks))];
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    for (const dir of left) {
      try { rmdirSync(dir); } catch { /* still has tasks or children: next round */ }
    }
    if (cgroupRoots().every((d) => !existsSync(d))) return;
    if (Date.now() > deadline) {
      throw new Error(`could not remove the node's cgroups: ${cgroupRoots().filter(existsSync).join(', ')}`);
    }
    await sleep(100);
  }
}
