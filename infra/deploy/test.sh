#!/usr/bin/env bash
# The deploy checks: the container image, the Kubernetes manifests and the
# CloudFormation template, each built or validated and run (see the README's
# "Deploy" section and infra/README.md).
#
#   infra/deploy/test.sh         # alone: starts (and stops) its own harness
#
# infra/test.sh runs it as its "deploy" phase, inside its harness. It
# installs what it needs (podman, mmdebstrap, runc from Debian; cfn-lint and
# kubernetes-validate come with infra/requirements.txt), builds the release
# binary, and fails on the first missing piece: nothing is skipped.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/session-bridge/target}
export CONTAINERS_CONF=$here/containers.conf
t0=$(date +%s)

if [ -z "${SB_RUN_DIR:-}" ] || [ -z "${SB_MOTO_URL:-}" ]; then
  # shellcheck source=infra/harness.sh
  . "$root/infra/harness.sh"
  trap 'rc=$?; harness_stop "$rc"; exit "$rc"' EXIT
fi

say() { printf 'deploy: %s\n' "$*" >&2; }
die() { printf 'deploy: ERROR: %s\n' "$*" >&2; exit 1; }

# ---- tools ------------------------------------------------------------------
need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v runc >/dev/null 2>&1 || need+=(runc)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages ${need[*]}; install them or run as root"
  say "apt-get install ${need[*]} uidmap slirp4netns fuse-overlayfs"
  log=$SB_RUN_DIR/deploy-apt.log
  apt() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"; }
  if ! apt install -y --no-install-recommends "${need[@]}" uidmap slirp4netns fuse-overlayfs >"$log" 2>&1; then
    { apt update && apt install -y --no-install-recommends "${need[@]}" uidmap slirp4netns fuse-overlayfs; } >>"$log" 2>&1 ||
      { tail -n 20 "$log" >&2; die "could not install ${need[*]} (log: $log)"; }
  fi
fi
venv=$root/infra/.venv/bin
for tool in cfn-lint kubernetes-validate; do
  [ -x "$venv/$tool" ] || die "$tool missing from infra/.venv (infra/requirements.txt; the harness installs it)"
done
export PATH=$venv:$PATH

# ---- release binary, base image, ports --------------------------------------
say "cargo build --release --locked --bin session-bridge"
(cd "$root" && cargo build --release --locked --bin session-bridge --quiet)
binary=$CARGO_TARGET_DIR/release/session-bridge
[ -x "$binary" ] || die "no binary at $binary"
base=$("$here/base.sh")
ports=$(flock "$root/infra/.run/.ports.lock" "$venv/python" "$root/infra/lib/freeports.py" 2 \
  "$root/infra/.run" "$SB_RUN_DIR/ports") || die "could not pick free ports"
read -r port_cfn port_container <<<"$ports"
work=$SB_RUN_DIR/deploy
mkdir -p "$work"

# ---- the three checks (all run; the first failure decides the status) -------
rc=0
results=()
check() { # NAME CMD...
  local name=$1 s=$(date +%s) r=0
  shift
  say "== $name"
  "$venv/python" "$@" || r=$?
  results+=("$name $([ "$r" = 0 ] && echo OK || echo FAILED) $(($(date +%s) - s))s")
  [ "$rc" != 0 ] || rc=$r
}
c=$here/checks
check kubernetes "$c/k8s_check.py" "$here/k8s" "$here/Containerfile" "$binary" "$work/k8s"
check cloudformation "$c/cfn_check.py" "$here/cloudformation/session-bridge.yaml" "$binary" "$work/cfn" "$port_cfn"
check container "$c/container_check.py" "$here/Containerfile" "$binary" "$base" "$work/container" "$port_container"

say "results: ${results[*]/%/;} total $(($(date +%s) - t0))s"
exit "$rc"
