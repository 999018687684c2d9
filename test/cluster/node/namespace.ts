/**
 * The node's own network and mount namespaces, which every node process runs
 * in and which no packet can leave.
 *
 * A holder process (`sleep`, started by `unshare --net --mount`) keeps them
 * alive; daemons join both with `nsenter`, so that they share one mount table
 * (the kubelet's volume mounts are visible to containerd and runc) and one
 * network stack. The network namespace has only `lo` and the Pods' bridge, with
 * no default route: even a Service that kube-proxy has not programmed yet
 * cannot send anywhere. Its iptables rules, its sysctls and its bridge are its
 * own; the machine's are never touched. Mounts made inside (a tmpfs on /run and
 * /var/log, the node's folder over /var/lib, a sysfs that shows the namespace's
 * links, the kubelet's kernel settings) are private to it and vanish with it, so
 * teardown is: stop every process in it, then the holder.
 *
 * (`ip netns exec` is not used: it gives each command a mount namespace of its
 * own and remounts /sys, hiding the cgroup mounts runc and the kubelet need.)
 */
import { mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../command.ts';
import { BRIDGE, NODE_IP, POD_CIDR } from './layout.ts';

/** The command prefix that runs a program inside the namespaces held by `holderPid`. */
export function enter(holderPid: number): string[] {
  return ['nsenter', `--target=${holderPid}`, '--mount', '--net', '--'];
}

/**
 * The holder: `unshare` makes the namespaces (mounts propagate from the machine
 * into them, never out) and execs `sleep infinity` in them.
 */
export const HOLDER = {
  via: ['unshare', '--mount', '--net', '--propagation', 'slave', '--'],
  binary: 'sleep',
  args: ['infinity'],
};

function inside(holderPid: number, command: string[]): Promise<string> {
  const [nsenter = 'nsenter', ...prefix] = enter(holderPid);
  return run(nsenter, [...prefix, ...command]);
}

/** The identity of a process's namespace (`net`, `mnt`), or undefined once it is gone. */
export function namespaceOf(pid: number, kind: 'net' | 'mnt'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return undefined;
  }
}

/**
 * Inside the namespaces: loopback, the bridge holding the node's address, IP
 * forwarding between Pods (this namespace's own sysctl), and the private mounts.
 */
export async function prepareNamespaces(holderPid: number,
  o: { varLib: string; kernelSettings: Record<string, string>; scratch: string }): Promise<void> {
  const sh = (cmd: string[]) => inside(holderPid, cmd);
  await sh(['ip', 'link', 'set', 'lo', 'up']);
  await sh(['ip', 'link', 'add', BRIDGE, 'type', 'bridge']);
  await sh(['ip', 'addr', 'add', `${NODE_IP}/${POD_CIDR.split('/')[1] ?? '24'}`, 'dev', BRIDGE]);
  await sh(['ip', 'link', 'set', BRIDGE, 'up']);
  await sh(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  await sh(['mount', '-t', 'tmpfs', '-o', 'mode=755', 'node-run', '/run']);
  await sh(['mount', '-t', 'tmpfs', '-o', 'mode=755', 'node-log', '/var/log']);
  await sh(['mount', '--bind', o.varLib, '/var/lib']);
  // A sysfs of the namespace (its /sys/class/net lists the node's links), with the cgroup mounts put back.
  await sh(['mkdir', '/run/machine-cgroup']);
  await sh(['mount', '--rbind', '/sys/fs/cgroup', '/run/machine-cgroup']);
  await sh(['mount', '-t', 'sysfs', 'node-sys', '/sys']);
  await sh(['mount', '--rbind', '/run/machine-cgroup', '/sys/fs/cgroup']);
  await sh(['umount', '--lazy', '/run/machine-cgroup']);
  await sh(['rmdir', '/run/machine-cgroup']);
  // Machine-wide kernel settings (not per namespace) that a daemon would write: inside, a read-only
  // file with the value it wants stands over each, so it reads what it wants and writes nothing.
  mkdirSync(o.scratch, { recursive: true });
  for (const [key, value] of Object.entries(o.kernelSettings)) {
    const file = join(o.scratch, key.replaceAll('/', '.'));
    writeFileSync(file, `${value}\n`);
    await sh(['mount', '--bind', '-o', 'ro', file, `/proc/sys/${key}`]);
  }
}

/** Every process in the mount namespace `mnt` (the node's daemons, containerd's shims, their children). */
export function processesIn(mnt: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (Number.isInteger(pid) && pid !== process.pid && namespaceOf(pid, 'mnt') === mnt) pids.push(pid);
  }
  return pids;
}
