/**
 * The node's Kubernetes binaries come from a Go module of their own (so that
 * building them leaves the control plane's cached build valid); both modules
 * must pin one Kubernetes, or the kubelet would talk to an apiserver of
 * another version.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONTAINERD_VERSION, COREDNS_VERSION, KUBERNETES_VERSION, MODULES, NODE_MODULES } from './cluster/binaries.ts';

const goMod = (name: string) => {
  const m = [...MODULES, ...NODE_MODULES].find((x) => x.name === name);
  if (!m) throw new Error(`no module ${name}`);
  return readFileSync(join(m.dir, 'go.mod'), 'utf8');
};
/** `k8s.io/x => k8s.io/x vN` and `k8s.io/kubernetes vN` lines: what fixes the Kubernetes version. */
const kubernetesPins = (mod: string) => new Map([
  ...[...mod.matchAll(/^replace (k8s\.io\/[\w-]+) => \S+ (v[\d.]+)$/gm)].map((m) => [m[1] ?? '', m[2] ?? ''] as const),
  ...[...mod.matchAll(/^\s+(k8s\.io\/kubernetes) (v[\d.]+)/gm)].map((m) => [m[1] ?? '', m[2] ?? ''] as const),
]);

describe('the pinned Go modules', () => {
  it('pin the same Kubernetes release for the control plane and the node', () => {
    const controlPlane = kubernetesPins(goMod('kubernetes'));
    const node = kubernetesPins(goMod('kubernetes-node'));
    expect(controlPlane.get('k8s.io/kubernetes')).toBe(`v${KUBERNETES_VERSION}`);
    expect(node.get('k8s.io/kubernetes')).toBe(`v${KUBERNETES_VERSION}`);
    expect(node.size).toBeGreaterThan(30);
    expect(Object.fromEntries(node)).toEqual(Object.fromEntries(controlPlane));
  });

  it.each([
    ['containerd', `github.com/containerd/containerd/v2 v${CONTAINERD_VERSION}`],
    ['coredns', `github.com/coredns/coredns v${COREDNS_VERSION}`],
  ])('pin %s at the version the fixture names', (name, pin) => {
    expect(goMod(name)).toMatch(new RegExp(`^\\s*(require )?${pin.replaceAll('.', '\\.')}( // indirect)?$`, 'm'));
  });
});
