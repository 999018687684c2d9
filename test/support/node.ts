/**
 * What the node tests need beyond the cluster itself: npm's commands run as a
 * user runs them, Pods waited for, and the kernel's own view of a container's
 * processes (their user, their root filesystem), read from the node's cgroups.
 */
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { cgroupRoots } from '../cluster/node/cgroups.ts';
import { ROOT } from './paths.ts';

const exec = promisify(execFile);

/**
 * Runs an npm script as a user would. With `echo`, its stderr (a cold build's
 * progress lines) shows as it comes, not only when it is over.
 */
export function npmRun(args: string[], o: { echo?: boolean } = {}): Promise<{ stdout: string; stderr: string }> {
  const p = exec('npm', ['run', '--silent', ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (o.echo) p.child.stderr?.on('data', (chunk: string) => process.stderr.write(chunk));
  return p;
}

export const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)}s`;

/** The config digest of the image in an OCI archive: what the runtime reports as a container's imageID. */
export async function archiveImageId(archive: string): Promise<string> {
  const read = async (name: string) => JSON.parse((await exec('tar', ['-xOf', archive, name], { encoding: 'utf8', maxBuffer: 1 << 20 })).stdout) as
    { manifests?: { digest: string }[]; config?: { digest: string } };
  const index = await read('index.json');
  const manifest = await read(`blobs/${(index.manifests?.[0]?.digest ?? '').replace(':', '/')}`);
  return manifest.config?.digest ?? '';
}

export async function waitForPod(core: CoreV1Api, namespace: string, name: string, until: (p: V1Pod) => boolean,
  timeoutMs = 60_000): Promise<V1Pod> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await core.readNamespacedPod({ name, namespace }).catch(() => undefined);
    if (p && until(p)) return p;
    if (Date.now() > deadline) throw new Error(`pod ${namespace}/${name}: ${JSON.stringify(p?.status)}`);
    await sleep(200);
  }
}

export const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

function findDir(dir: string, name: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    if (e.name === name) return join(dir, e.name);
    const found = findDir(join(dir, e.name), name);
    if (found) return found;
  }
  return undefined;
}

/** capabilities: the effective set (CapEff), in hex; all zeros for none. */
export interface ProcessView { pid: number; uid: number; gid: number; rootReadOnly: boolean; capabilities: string }

/**
 * The processes of a container (`containerd://ID` from its status), as the
 * kernel sees them: real user and group, and whether `/` is mounted read-only
 * in the container's own mount namespace, and its effective capabilities.
 */
export function containerProcesses(containerId: string): ProcessView[] {
  const id = containerId.replace(/^\w+:\/\//, '');
  const dir = cgroupRoots().map((r) => findDir(r, id)).find(Boolean);
  if (!dir) throw new Error(`no cgroup for container ${id}`);
  const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  return pids.map((pid) => {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const ids = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? -1);
    // The topmost mount on / is what the container sees.
    const root = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').findLast((l) => l.split(' ')[4] === '/');
    return {
      pid, uid: ids('Uid'), gid: ids('Gid'), rootReadOnly: (root?.split(' ')[5] ?? '').split(',').includes('ro'),
      capabilities: /^CapEff:\s+(\w+)/m.exec(status)?.[1] ?? '',
    };
  });
}

/**
 * A path as a container's processes see it, reached from the host through
 * /proc/PID/root: the container's own symbolic links are followed inside its
 * root, where the host would follow an absolute one (Debian's /var/run -> /run)
 * to its own.
 */
export function pathInContainer(pid: number, path: string): string {
  const root = `/proc/${pid}/root`;
  const todo = path.split('/').filter(Boolean);
  const done: string[] = [];
  for (let links = 0; todo.length > 0;) {
    const part = todo.shift() ?? '';
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const here = join(root, ...done, part);
    if (lstatSync(here, { throwIfNoEntry: false })?.isSymbolicLink()) {
      if (++links > 40) throw new Error(`too many symbolic links in ${path}`);
      const target = readlinkSync(here);
      if (target.startsWith('/')) done.length = 0;
      todo.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    done.push(part);
  }
  return join(root, ...done);
}
