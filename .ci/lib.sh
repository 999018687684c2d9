# Functions of .ci/run, in a file of their own so that test/ci.test.ts can run them.
#
# They name no package registry or download host: Debian packages come from the
# machine's apt sources, and the Go toolchain through the machine's own Go
# configuration (GOPROXY, as `go env GOPROXY` shows it).

apt_install() {
  echo "ci: installing $* (Debian)"
  apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
}

# "go1.26.8" or "1.26.8" -> 1026008, for comparing Go releases.
go_release_number() {
  local IFS=.
  # shellcheck disable=SC2206
  local v=(${1#go})
  echo $(( ${v[0]:-0} * 1000000 + ${v[1]:-0} * 1000 + ${v[2]:-0} ))
}

# The release of the `go` on PATH, such as go1.26.8 ("go version" works in every release).
go_release() {
  go version | awk '{print $3}'
}

# The highest `go` line of the control plane's modules (test/cluster/bins/*/go.mod).
go_required() {
  awk '$1 == "go" { print $2 }' test/cluster/bins/*/go.mod | sort -V | tail -n1
}

# Puts a Go on PATH that builds the control plane: the machine's own when it is
# recent enough, else go$1 (the release CI pins). Go >= 1.21 switches
# toolchains: with GOTOOLCHAIN=go1.26.8 it fetches that release as a module
# through the configured GOPROXY into the module cache. Debian's golang-go may
# be older than that (bookworm's is 1.19); a newer golang-1.NN-go (from
# bookworm-backports, or a later Debian release) is installed when apt has one.
ensure_go() {
  local pinned=$1 required switching=1.21
  required=$(go_required)
  if ! command -v go >/dev/null 2>&1; then
    apt_install golang-go
  fi
  if [ "$(go_release_number "$(go_release)")" -ge "$(go_release_number "$required")" ]; then
    return 0
  fi
  if [ "$(go_release_number "$(go_release)")" -lt "$(go_release_number "$switching")" ]; then
    local newest
    newest=$(apt-cache search --names-only '^golang-1\.[0-9]+-go$' | cut -d' ' -f1 | sort -V | tail -n1)
    local release=${newest#golang-}
    release=${release%-go}
    if [ -n "$newest" ] && [ "$(go_release_number "$release")" -ge "$(go_release_number "$switching")" ]; then
      apt_install "$newest"
      export PATH="/usr/lib/go-$release/bin:$PATH"
      if [ "$(go_release_number "$(go_release)")" -ge "$(go_release_number "$required")" ]; then
        return 0
      fi
    else
      echo "ci: Go $(go_release) cannot fetch go$pinned: switching toolchains needs Go $switching or later." >&2
      echo "ci: install one (on Debian bookworm: enable bookworm-backports, then apt-get install golang-1.2x-go)." >&2
      return 1
    fi
  fi
  echo "ci: go$pinned through the Go toolchain mechanism (GOPROXY=$(go env GOPROXY))"
  local goroot
  goroot=$(GOTOOLCHAIN="go$pinned" go env GOROOT)
  # The control plane is built with GOTOOLCHAIN=local: that release goes first on PATH.
  export PATH="$goroot/bin:$PATH"
  if [ "$(go_release)" != "go$pinned" ]; then
    echo "ci: expected go$pinned on PATH, found $(go_release) in $goroot" >&2
    return 1
  fi
}

# Debian's promtool and Prometheus server, when either is missing: the alert rules' tests
# (test/prometheus-rules.test.ts, test/prometheus.e2e.test.ts) run them, each test starting its own
# server on a loopback port. The package's own service must not start (it would listen on :9090 on
# every interface): a policy-rc.d that refuses every start is in place for the install, unless the
# machine already has one.
ensure_prometheus() {
  if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    return 0
  fi
  local policy=${POLICY_RC_D:-/usr/sbin/policy-rc.d} ours= rc=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# ci: no service starts while packages install\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    ours=1
  fi
  DEBIAN_FRONTEND=noninteractive apt_install --no-install-recommends prometheus || rc=$?
  if [ -n "$ours" ]; then rm -f "$policy"; fi
  return "$rc"
}
