/**
 * Builds the test cluster's binaries from the Go modules pinned under
 * test/cluster/bins, and caches them outside the repository, keyed by the
 * module's version and the hash of its go.mod/go.sum. A warm machine reuses
 * them; a cold one builds them once (minutes for Kubernetes).
 *
 * The control plane (etcd, kube-apiserver, kube-controller-manager, kubectl,
 * helm) is what every integration test needs; the node (kubelet, kube-proxy,
 * kube-scheduler, containerd, CoreDNS) is built only for `cluster:up --node`;
 * the kstatus tool (the status library GitOps tools wait with) only for the
 * tests that ask it (test/gitops-status.test.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KUBERNETES_VERSION = '1.36.3';
export const ETCD_VERSION = '3.6.16';
export const HELM_VERSION = '4.3.1';
export const CONTAINERD_VERSION = '2.2.9';
export const COREDNS_VERSION = '1.15.0';
/** sigs.k8s.io/cli-utils, whose pkg/kstatus Flux, kpt and cli-utils' appliers compute readiness with. */
export const CLI_UTILS_VERSION = '0.37.2';

const binsDir = join(dirname(fileURLToPath(import.meta.url)), 'bins');

interface BinaryModule {
  name: string;
  version: string;
  dir: string;
  /** Go package path to output file name. */
  packages: Record<string, string>;
  ldflags: string;
  /** Go build tags, if the module needs any. */
  tags?: string;
}

function versionLdflags(): string {
  const [major, minor] = KUBERNETES_VERSION.split('.');
  const flags: string[] = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    flags.push(
      `-X ${pkg}.gitVersion=v${KUBERNETES_VERSION}`,
      `-X ${pkg}.gitMajor=${major}`,
      `-X ${pkg}.gitMinor=${minor}`,
      `-X ${pkg}.gitTreeState=clean`,
    );
  }
  return flags.join(' ');
}

export const MODULES: BinaryModule[] = [
  {
    name: 'etcd',
    version: ETCD_VERSION,
    dir: join(binsDir, 'etcd'),
    packages: { '.': 'etcd' },
    ldflags: '-s -w',
  },
  {
    name: 'kubernetes',
    version: KUBERNETES_VERSION,
    dir: join(binsDir, 'k8s'),
    packages: {
      'k8s.io/kubernetes/cmd/kube-apiserver': 'kube-apiserver',
      'k8s.io/kubernetes/cmd/kube-controller-manager': 'kube-controller-manager',
      'k8s.io/kubernetes/cmd/kubectl': 'kubectl',
    },
    ldflags: versionLdflags(),
  },
  {
    name: 'helm',
    version: HELM_VERSION,
    dir: join(binsDir, 'helm'),
    packages: { 'helm.sh/helm/v4/cmd/helm': 'helm' },
    ldflags: `-s -w -X helm.sh/helm/v4/internal/version.version=v${HELM_VERSION}`,
  },
];

/** What `cluster:up --node` adds: built on first use, not for every test run. */
export const NODE_MODULES: BinaryModule[] = [
  {
    name: 'containerd',
    version: CONTAINERD_VERSION,
    dir: join(binsDir, 'containerd'),
    packages: {
      'github.com/containerd/containerd/v2/cmd/containerd': 'containerd',
      'github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2': 'containerd-shim-runc-v2',
      'github.com/containerd/containerd/v2/cmd/ctr': 'ctr',
    },
    ldflags: `-s -w -X github.com/containerd/containerd/v2/version.Version=v${CONTAINERD_VERSION}`,
    // Snapshotters that need cgo or kernel features this node does not use (it uses overlayfs).
    tags: 'no_btrfs no_devmapper no_zfs no_aufs',
  },
  {
    name: 'coredns',
    version: COREDNS_VERSION,
    dir: join(binsDir, 'coredns'),
    packages: { '.': 'coredns' },
    ldflags: '-s -w',
  },
  {
    // A module of its own (the control plane's cache stays valid), pinned like the control plane's:
    // test/cluster-binaries.test.ts checks that both pin the same Kubernetes.
    name: 'kubernetes-node',
    version: KUBERNETES_VERSION,
    dir: join(binsDir, 'k8s-node'),
    packages: {
      'k8s.io/kubernetes/cmd/kubelet': 'kubelet',
      'k8s.io/kubernetes/cmd/kube-proxy': 'kube-proxy',
      'k8s.io/kubernetes/cmd/kube-scheduler': 'kube-scheduler',
    },
    ldflags: versionLdflags(),
  },
];

/** A small program around the real kstatus library (test/cluster/bins/kstatus/main.go). */
export const KSTATUS_MODULE: BinaryModule = {
  name: 'kstatus',
  version: CLI_UTILS_VERSION,
  dir: join(binsDir, 'kstatus'),
  packages: { '.': 'kstatus' },
  ldflags: '-s -w',
};

/** The machine's cache for the test cluster: binaries here, images beside them. */
export function cacheBase(): string {
  return process.env.APIKEY_OPERATOR_CACHE
    ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'apikey-operator');
}

export function cacheRoot(): string {
  return join(cacheBase(), 'control-plane');
}

function moduleCacheDir(m: BinaryModule): string {
  const h = createHash('sha256');
  h.update(readFileSync(join(m.dir, 'go.mod')));
  h.update(readFileSync(join(m.dir, 'go.sum')));
  h.update(m.ldflags);
  h.update(m.tags ?? '');
  return join(cacheRoot(), `${m.name}-${m.version}-${h.digest('hex').slice(0, 12)}`);
}

export interface Binaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubectl: string;
  helm: string;
}

export function binaryPaths(): Binaries {
  const [etcd, k8s, helm] = MODULES.map(moduleCacheDir) as [string, string, string];
  return {
    etcd: join(etcd, 'etcd'),
    kubeApiserver: join(k8s, 'kube-apiserver'),
    kubeControllerManager: join(k8s, 'kube-controller-manager'),
    kubectl: join(k8s, 'kubectl'),
    helm: join(helm, 'helm'),
  };
}

export interface NodeBinaries {
  kubelet: string;
  kubeProxy: string;
  kubeScheduler: string;
  containerd: string;
  /** The folder of containerd-shim-runc-v2, which containerd finds on its PATH. */
  containerdShimDir: string;
  ctr: string;
  coredns: string;
}

export function nodeBinaryPaths(): NodeBinaries {
  const [containerd, coredns, k8s] = NODE_MODULES.map(moduleCacheDir) as [string, string, string];
  return {
    kubelet: join(k8s, 'kubelet'),
    kubeProxy: join(k8s, 'kube-proxy'),
    kubeScheduler: join(k8s, 'kube-scheduler'),
    containerd: join(containerd, 'containerd'),
    containerdShimDir: containerd,
    ctr: join(containerd, 'ctr'),
    coredns: join(coredns, 'coredns'),
  };
}

/** Builds the kstatus program when it is not in the cache yet (seconds on a warm Go cache); its path. */
export async function ensureKstatus(log: (line: string) => void = stderrLine): Promise<string> {
  await ensureBuilt([KSTATUS_MODULE], { what: 'the kstatus tool', coldTime: 'about a minute', command: 'npm run cluster:build -- --kstatus' }, log);
  return join(moduleCacheDir(KSTATUS_MODULE), 'kstatus');
}

function isBuilt(m: BinaryModule): boolean {
  const dir = moduleCacheDir(m);
  return Object.values(m.packages).every((f) => existsSync(join(dir, f)));
}

export function missingModules(): string[] {
  return MODULES.filter((m) => !isBuilt(m)).map((m) => `${m.name} ${m.version}`);
}

export class MissingToolchainError extends Error {}

function goAvailable(): string | undefined {
  const r = spawnSync('go', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/**
 * Builds every control-plane module that is not in the cache yet. `log`
 * receives progress lines; a cold Kubernetes build compiles ~2,000 packages
 * and takes minutes.
 */
export async function ensureBinaries(log: (line: string) => void = stderrLine): Promise<Binaries> {
  await ensureBuilt(MODULES, { what: 'the test control plane', coldTime: '10-20 minutes', command: 'npm run cluster:build' }, log);
  return binaryPaths();
}

/** Builds the node's modules that are not in the cache yet, like ensureBinaries. */
export async function ensureNodeBinaries(log: (line: string) => void = stderrLine): Promise<NodeBinaries> {
  await ensureBuilt(NODE_MODULES, {
    what: "the test cluster's node", coldTime: '10-15 minutes', command: 'npm run cluster:build -- --node',
  }, log);
  return nodeBinaryPaths();
}

function stderrLine(line: string): void {
  process.stderr.write(`${line}\n`);
}

interface BuildDescription {
  /** What the modules make up, for messages ("the test control plane"). */
  what: string;
  coldTime: string;
  /** The command that builds them ahead of time. */
  command: string;
}

async function ensureBuilt(modules: BinaryModule[], { what, coldTime, command }: BuildDescription,
  log: (line: string) => void): Promise<void> {
  const todo = modules.filter((m) => !isBuilt(m));
  if (todo.length === 0) return;
  const go = goAvailable();
  if (!go) {
    throw new MissingToolchainError(
      `${what[0]?.toUpperCase()}${what.slice(1)} (${todo.map((m) => `${m.name} ${m.version}`).join(', ')}) is not built yet, ` +
        `and there is no Go toolchain to build it: 'go' is not on PATH. Install Go >= 1.26 ` +
        `(Debian: apt-get install golang, or from https://go.dev/dl) and run '${command}'.`,
    );
  }
  log(`Building ${what} with ${go}. The binaries are cached in ${cacheRoot()}; ` +
    `the first build takes ${coldTime} on 2 cores, later runs reuse it.`);
  for (const m of todo) {
    await buildOnce(m, log);
  }
}

/**
 * Builds a module unless another process is building it already, in which case it waits for that
 * build: several test runs started at once on a cold cache (a developer's parallel worktrees) would
 * otherwise each compile the same ~2,000 packages. The lock is a directory made atomically beside the
 * cache entry, holding the builder's pid; a lock whose process is gone is stale and taken over.
 */
async function buildOnce(m: BinaryModule, log: (line: string) => void): Promise<void> {
  const lock = `${moduleCacheDir(m)}.lock`;
  let told = false;
  for (;;) {
    if (isBuilt(m)) return;
    try {
      mkdirSync(lock);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readText(join(lock, 'pid')));
      // No pid a minute after the lock was made: its maker died between the two steps.
      if (holder > 0 ? !pidAlive(holder) : Date.now() - mtimeMs(lock) > 60_000) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (!told) log(`[${m.name} ${m.version}] another process (pid ${holder || '?'}) is building it; waiting for that build`);
      told = true;
      await new Promise((r) => setTimeout(r, 2_000));
      continue;
    }
    try {
      writeFileSync(join(lock, 'pid'), String(process.pid));
      if (!isBuilt(m)) await buildModule(m, log);
      return;
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function mtimeMs(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function buildModule(m: BinaryModule, log: (line: string) => void): Promise<void> {
  const out = moduleCacheDir(m);
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const started = Date.now();
  log(`[${m.name} ${m.version}] building ${Object.values(m.packages).join(', ')} ...`);
  let compiled = 0;
  let lastReport = 0;
  const stderr: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(
      'go',
      ['build', '-v', '-trimpath', ...(m.tags ? ['-tags', m.tags] : []), '-ldflags', m.ldflags, '-o', `${tmp}/`,
        ...Object.keys(m.packages)],
      {
        cwd: m.dir,
        env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly' },
        stdio: ['ignore', 'inherit', 'pipe'],
      },
    );
    let partial = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (/^[\w.\-/]+$/.test(line)) {
          compiled++;
        } else if (line.trim() !== '') {
          stderr.push(line);
          if (stderr.length > 200) stderr.shift();
        }
      }
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        log(`[${m.name}] ${compiled} packages compiled, ${Math.round((Date.now() - started) / 1000)}s`);
      }
    });
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`building ${m.name} ${m.version} failed (go build exit ${code}):\n${stderr.join('\n')}`);
  }
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  log(`[${m.name} ${m.version}] built in ${Math.round((Date.now() - started) / 1000)}s`);
}
