/**
 * The machine's own network state as text, to compare before and after a node
 * cluster: links, addresses, routes, iptables rules, network namespaces, and
 * the sysctls a node's daemons would write (forwarding, bridge netfilter,
 * conntrack, and the kernel settings the kubelet insists on). Counters, dates
 * and address lifetimes are left out: they change by themselves.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export const WATCHED_SYSCTLS = [
  'net/ipv4/ip_forward', 'net/ipv4/conf/all/forwarding', 'net/ipv6/conf/all/forwarding',
  'net/ipv4/conf/all/route_localnet', 'net/bridge/bridge-nf-call-iptables', 'net/bridge/bridge-nf-call-ip6tables',
  'net/netfilter/nf_conntrack_max', 'net/netfilter/nf_conntrack_tcp_timeout_established',
  'net/netfilter/nf_conntrack_tcp_timeout_close_wait',
  'vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes',
];

async function output(command: string, args: string[]): Promise<string> {
  try {
    return (await exec(command, args, { encoding: 'utf8' })).stdout;
  } catch (err) {
    return `(${command} failed: ${(err as Error).message.split('\n')[0] ?? ''})`;
  }
}

/** iptables-save output without its comment lines (dates) and packet counters. */
function rules(save: string): string {
  return save.split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/g, '')).join('\n');
}

function sysctl(key: string): string {
  try {
    return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  } catch {
    return '(absent)';
  }
}

export async function hostNetworkState(): Promise<Record<string, string>> {
  return {
    links: await output('ip', ['-o', 'link', 'show']),
    addresses: (await output('ip', ['-o', 'addr', 'show'])).replace(/valid_lft \S+ preferred_lft \S+/g, ''),
    routes: await output('ip', ['route', 'show', 'table', 'all']),
    routes6: await output('ip', ['-6', 'route', 'show', 'table', 'all']),
    iptables: rules(await output('iptables-save', [])),
    ip6tables: rules(await output('ip6tables-save', [])),
    netns: await output('ip', ['netns', 'list']),
    ...Object.fromEntries(WATCHED_SYSCTLS.map((k) => [k, sysctl(k)])),
  };
}
