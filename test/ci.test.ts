/**
 * CI names no host: no tracked file holds the address of a package registry this machine is
 * configured with (npm's registry, Go's GOPROXY and GOSUMDB, apt's sources), and .ci/run gets Go
 * from the machine's apt sources and the machine's own Go configuration (GOPROXY). Its Go steps run
 * here in a real bash, with stand-ins for go, apt-get and apt-cache that behave as those do for the
 * calls .ci/lib.sh makes (no package is installed, nothing is downloaded).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './support/paths.ts';

/** The output of a command, or '' when it is not installed. */
function output(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

/** Host names in `text`'s URLs (scheme://host...). */
function urlHosts(text: string): string[] {
  return [...text.matchAll(/\b[a-z][a-z0-9+.-]*:\/\/([^/\s:'"]+)/gi)].map((m) => m[1]!.toLowerCase());
}

/** The package hosts this machine is configured with: npm's registry, Go's proxy and checksum database, apt's sources. */
function configuredPackageHosts(): string[] {
  const npm = process.env.npm_config_registry ?? output('npm', ['config', 'get', 'registry']);
  const go = output('go', ['env', 'GOPROXY', 'GOSUMDB']);
  // GOSUMDB is a name (and an optional URL after a space): the name is the host.
  const sumdb = go.split('\n')[1]?.trim().split(/\s+/)[0] ?? '';
  const aptFiles = ['/etc/apt/sources.list', ...(existsSync('/etc/apt/sources.list.d')
    ? readdirSync('/etc/apt/sources.list.d').map((f) => join('/etc/apt/sources.list.d', f)) : [])].filter((f) => existsSync(f));
  const apt = aptFiles.map((f) => readFileSync(f, 'utf8')).join('\n');
  const hosts = [...urlHosts(npm), ...urlHosts(go), ...(/^[a-z0-9.-]+\.[a-z]+$/i.test(sumdb) && sumdb !== 'off' ? [sumdb] : []), ...urlHosts(apt)];
  return [...new Set(hosts)];
}

describe('the repository', () => {
  it('names no package registry host this machine is configured with in any tracked file', () => {
    const hosts = configuredPackageHosts();
    // npm runs these tests, so its registry at least is known.
    expect(hosts.length).toBeGreaterThan(0);
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    expect(files).toContain('.ci/run');
    const found = files.flatMap((f) => {
      const text = readFileSync(join(ROOT, f), 'latin1').toLowerCase();
      return hosts.filter((h) => text.includes(h)).map((h) => `${f}: ${h}`);
    });
    expect(found).toEqual([]);
  });
});

const tmp = mkdtempSync(join(tmpdir(), 'ci-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * A stand-in `go` of one release. Like the go command, `go env GOROOT` under GOTOOLCHAIN=goX names
 * the root of that release (here a folder of stand-ins, as the module cache would hold it).
 */
function fakeGo(bin: string, release: string, toolchains: string): void {
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'go'), `#!/bin/sh
case "$1 $2" in
  "version "*) echo "go version ${release} linux/amd64" ;;
  "env GOPROXY") echo "https://goproxy.example.com" ;;
  "env GOROOT")
    if [ -n "\${GOTOOLCHAIN:-}" ] && [ "$GOTOOLCHAIN" != local ] && [ "$GOTOOLCHAIN" != "${release}" ]; then
      echo "${toolchains}/$GOTOOLCHAIN"
    else
      dirname "$(dirname "$0")"
    fi ;;
  *) echo "unexpected: go $*" >&2; exit 2 ;;
esac
`);
  chmodSync(join(bin, 'go'), 0o755);
}

interface Machine { go?: string; aptGo?: string; aptCache?: string[] }

/**
 * Runs ensure_go 1.26.8 of .ci/lib.sh on a machine whose PATH holds `go` of release `go` (or none),
 * and an apt whose golang-go installs release `aptGo` and whose package list holds `aptCache`.
 */
function ensureGo(m: Machine): Promise<{ code: number; stdout: string; stderr: string; apt: string }> {
  const dir = mkdtempSync(join(tmp, 'machine-'));
  const toolchains = join(dir, 'toolchains');
  fakeGo(join(toolchains, 'go1.26.8', 'bin'), 'go1.26.8', toolchains);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  if (m.go) fakeGo(join(dir, 'go', 'bin'), m.go, toolchains);
  const aptLog = join(dir, 'apt.log');
  writeFileSync(aptLog, '');
  writeFileSync(join(bin, 'apt-get'), `#!/bin/sh
echo "apt-get $*" >> '${aptLog}'
if [ "$1" = install ] && [ "$*" != "\${*%golang-go}" ]; then
  ${m.aptGo ? `mkdir -p '${dir}/debian' && cp -r '${dir}/debian-package/bin' '${dir}/debian/'` : 'exit 100'}
fi
`);
  if (m.aptGo) fakeGo(join(dir, 'debian-package', 'bin'), m.aptGo, toolchains);
  writeFileSync(join(bin, 'apt-cache'), `#!/bin/sh\nprintf '%s\\n' ${(m.aptCache ?? []).map((p) => `'${p} - Go programming language compiler'`).join(' ')}\n`);
  for (const f of ['apt-get', 'apt-cache']) chmodSync(join(bin, f), 0o755);
  // Only the stand-ins and the system's tools: no real go.
  const path = [join(dir, 'debian', 'bin'), ...(m.go ? [join(dir, 'go', 'bin')] : []), bin, '/usr/bin', '/bin'].join(':');
  const script = '. .ci/lib.sh; set -e; ensure_go 1.26.8; echo "go: $(command -v go) $(go_release)"';
  return new Promise((resolve) => {
    // --norc: bash would read ~/.bashrc when it guesses it runs remotely (stdin a socket), as under execFile.
    execFile('/bin/bash', ['--norc', '--noprofile', '-c', script], { cwd: ROOT, env: { PATH: path, HOME: dir }, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: stdout.replaceAll(dir, '<machine>'), stderr, apt: readFileSync(aptLog, 'utf8').trim() });
    });
  });
}

describe('.ci/run\'s Go', () => {
  it('keeps a Go recent enough for the modules, and installs nothing', async () => {
    const r = await ensureGo({ go: 'go1.26.3' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('go: <machine>/go/bin/go go1.26.3');
    expect(r.apt).toBe('');
  });

  it('switches an older Go to the pinned release through the Go toolchain mechanism and the configured GOPROXY', async () => {
    const r = await ensureGo({ go: 'go1.24.2' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('ci: go1.26.8 through the Go toolchain mechanism (GOPROXY=https://goproxy.example.com)');
    expect(r.stdout).toContain('go: <machine>/toolchains/go1.26.8/bin/go go1.26.8');
    expect(r.apt).toBe('');
  });

  it('installs Debian\'s golang-go on a machine without Go, then switches it to the pinned release', async () => {
    const r = await ensureGo({ aptGo: 'go1.22.2' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.apt).toBe('apt-get update -qq\napt-get install -y -qq golang-go');
    expect(r.stdout).toContain('go: <machine>/toolchains/go1.26.8/bin/go go1.26.8');
  });

  it('stops with what to do when Debian offers only a Go too old to switch toolchains (bookworm: 1.19)', async () => {
    const r = await ensureGo({ aptGo: 'go1.19.8', aptCache: ['golang-1.19-go'] });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ci: Go go1.19.8 cannot fetch go1.26.8: switching toolchains needs Go 1.21 or later.');
    expect(r.stderr).toContain('bookworm-backports');
    expect(r.stdout).not.toContain('go: ');
  });
});

/**
 * Runs ensure_prometheus of .ci/lib.sh with a PATH of stand-ins only: apt-get (which records its
 * calls and whether policy-rc.d was there to keep the package's service from starting), and promtool
 * or prometheus when the machine is to have them.
 */
function ensurePrometheus(has: ('promtool' | 'prometheus')[]): Promise<{ code: number; stderr: string; apt: string; policyLeft: boolean }> {
  const dir = mkdtempSync(join(tmp, 'prometheus-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const aptLog = join(dir, 'apt.log');
  const policy = join(dir, 'policy-rc.d');
  writeFileSync(aptLog, '');
  writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\necho "apt-get $* (policy-rc.d: $('${policy}'; echo $?))" >> '${aptLog}'\n`);
  for (const p of has) writeFileSync(join(bin, p), '#!/bin/sh\n');
  for (const f of ['apt-get', ...has]) chmodSync(join(bin, f), 0o755);
  // chmod and rm from the system, and nothing else of it: this machine has the real promtool in /usr/bin.
  for (const f of ['chmod', 'rm']) {
    writeFileSync(join(bin, f), `#!/bin/sh\nexec /usr/bin/${f} "$@"\n`);
    chmodSync(join(bin, f), 0o755);
  }
  const script = '. .ci/lib.sh; set -e; ensure_prometheus';
  return new Promise((resolve) => {
    execFile('/bin/bash', ['--norc', '--noprofile', '-c', script], { cwd: ROOT, env: { PATH: bin, HOME: dir, POLICY_RC_D: policy }, encoding: 'utf8' }, (err, _stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stderr, apt: readFileSync(aptLog, 'utf8').trim(), policyLeft: existsSync(policy) });
    });
  });
}

describe('.ci/run\'s Prometheus', () => {
  it('installs nothing when promtool and prometheus are there', async () => {
    const r = await ensurePrometheus(['promtool', 'prometheus']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.apt).toBe('');
  });

  it.each([[[]], [['promtool' as const]]])('installs Debian\'s prometheus with its service kept from starting when the machine has %j', async (has) => {
    const r = await ensurePrometheus(has);
    expect(r.code, r.stderr).toBe(0);
    // policy-rc.d answered 101 (no service starts) during the install, and is gone after it.
    expect(r.apt).toBe('apt-get update -qq (policy-rc.d: 101)\napt-get install -y -qq --no-install-recommends prometheus (policy-rc.d: 101)');
    expect(r.policyLeft).toBe(false);
  });
});
