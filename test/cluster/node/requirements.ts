/**
 * What a machine needs to run the test node: root, and a few Debian packages.
 * Checked before anything starts, so that a missing one is one clear message.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export class NodeRequirementsError extends Error {}

/** What `up --node` runs, by the Debian package that provides it. */
const REQUIRED_TOOLS: [string, string][] = [
  ['unshare', 'util-linux'], ['nsenter', 'util-linux'], ['mount', 'mount'], ['ip', 'iproute2'], ['sysctl', 'procps'],
  ['runc', 'runc'], ['iptables', 'iptables'], ['iptables-restore', 'iptables'], ['socat', 'socat'],
  ['buildah', 'buildah'], ['gcc', 'gcc'],
];
const CNI_PLUGINS = ['bridge', 'host-local', 'portmap', 'loopback'].map((p) => join('/usr/lib/cni', p));

export function onPath(tool: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return join(dir, tool);
    } catch { /* next */ }
  }
  return undefined;
}

/** Refuses, in one message that says how to fix it, when this machine cannot run a node. */
export function assertNodeRequirements(): void {
  if (process.getuid?.() !== 0) {
    throw new NodeRequirementsError(
      'The test node needs root: it makes network namespaces, mounts and cgroups and runs containers. ' +
      'Run as root (for example: sudo npm test, or sudo npm run cluster:up -- --dir DIR --node); ' +
      'CI runs .ci/run as root.',
    );
  }
  const missing = REQUIRED_TOOLS.filter(([tool]) => !onPath(tool));
  if (!CNI_PLUGINS.every((p) => existsSync(p))) missing.push(['CNI plugins', 'containernetworking-plugins']);
  if (missing.length) {
    const packages = [...new Set(missing.map(([, pkg]) => pkg))];
    throw new NodeRequirementsError(
      `The test node needs ${missing.map(([tool]) => tool).join(', ')}: apt-get install ${packages.join(' ')} ` +
      '(.ci/run installs them when they are missing).',
    );
  }
}
