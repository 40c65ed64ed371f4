#!/usr/bin/env bash
# session-bridge's test command: lint, start the test servers, run the tests.
#
#   ./infra/test.sh                         everything (what CI runs)
#   ./infra/test.sh -p session-bridge-redis one package (all its targets + doctests)
#   ./infra/test.sh --test it -- redis      cargo test selection / filter args
#   SB_SKIP_LINT=1 ./infra/test.sh ...      skip cargo fmt / clippy / doc
#   SB_KEEP_RUN=1 ./infra/test.sh ...       keep infra/.run/<id> (logs) on success
#   SB_SMOKE=1 ./infra/test.sh ...          also run infra/lib/smoke.sh first
#   SB_DEPLOY=0|1 ./infra/test.sh ...       leave out / add the deploy checks
#                                           (default: on for the whole suite)
#
# Arguments are cargo test arguments. Without a package selection (-p,
# --package, --workspace, --exclude) --workspace is added. Without a target
# selection (--lib, --bin(s), --test(s), --example(s), --bench(es),
# --all-targets, --doc) it runs `--all-targets`, then `--doc`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
started=$(date +%s)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/session-bridge/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-auto}

phase_names=()
phase_secs=()
phase_t0=0
phase_name=""
phase() { # phase NAME: start timing NAME (ends the previous one)
  phase_end
  phase_name=$1
  phase_t0=$(date +%s)
  printf '\n==> %s\n' "$1" >&2
}
phase_end() {
  if [ -n "$phase_name" ]; then
    phase_names+=("$phase_name")
    phase_secs+=("$(($(date +%s) - phase_t0))")
    phase_name=""
  fi
}

summary() {
  local rc=$1 i line=""
  phase_end
  for i in "${!phase_names[@]}"; do
    line+="${line:+, }${phase_names[i]} ${phase_secs[i]}s"
  done
  if [ "$rc" = 0 ]; then
    printf '\ninfra/test.sh: OK in %ss (%s)\n' "$(($(date +%s) - started))" "$line" >&2
  else
    printf '\ninfra/test.sh: FAILED (exit %s) after %ss (%s)\n' "$rc" "$(($(date +%s) - started))" "$line" >&2
  fi
}

# run CMD...: run a long command in its own process group, so that on INT/TERM
# the trap fires at once and can end the whole group (cargo, test binaries,
# servers they spawned) before the harness is stopped.
child=""
run() {
  local rc=0
  setsid "$@" &
  child=$!
  wait "$child" || rc=$?
  child=""
  return "$rc"
}

on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$child" ]; then
    kill -TERM -- "-$child" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 -- "-$child" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$child" 2>/dev/null || true
  fi
  if declare -F harness_stop >/dev/null; then
    harness_stop "$rc" || true
  fi
  summary "$rc"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- arguments -------------------------------------------------------------
sel=()
rest=()
seen_dashdash=0
for a in "$@"; do
  if [ "$seen_dashdash" = 1 ]; then
    rest+=("$a")
  elif [ "$a" = -- ]; then
    seen_dashdash=1
    rest+=("$a")
  else
    sel+=("$a")
  fi
done
has_pkg=0
has_target=0
for a in "${sel[@]}"; do
  case $a in
    -p | -p* | --package | --package=* | --workspace | --all | --exclude | --exclude=*) has_pkg=1 ;;
    --lib | --bin | --bin=* | --bins | --test | --test=* | --tests | --example | --example=* | --examples | \
      --bench | --bench=* | --benches | --all-targets | --doc) has_target=1 ;;
  esac
done
pkg=()
[ "$has_pkg" = 1 ] || pkg=(--workspace)
locked=()
[ -f Cargo.lock ] && locked=(--locked)

# ---- toolchain + lint (before any server starts: fail fast) ---------------
phase toolchain
if ! cargo fmt --version >/dev/null 2>&1; then rustup component add rustfmt; fi
if ! cargo clippy --version >/dev/null 2>&1; then rustup component add clippy; fi
echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR" >&2

if [ "${SB_SKIP_LINT:-0}" != 1 ]; then
  phase "cargo fmt --check"
  cargo fmt --all -- --check
  phase "cargo clippy"
  run cargo clippy --workspace --all-targets "${locked[@]}" -- -D warnings
  phase "cargo doc"
  RUSTDOCFLAGS="-D warnings" run cargo doc --workspace --no-deps "${locked[@]}" --quiet
  phase "cargo clippy (library alone)"
  run cargo clippy -p session-bridge --no-default-features --all-targets "${locked[@]}" -- -D warnings
fi

# ---- the library alone: no service, no servers -----------------------------
# What a Rust user who adds `session-bridge` with default features off
# compiles and runs: request flows in-process on the memory and embedded
# stores, the module graph, the doctests and the layer-only example.
if [ "$has_pkg" = 0 ] && [ "$has_target" = 0 ]; then
  phase "library alone (no default features)"
  run cargo test -p session-bridge --no-default-features --features embedded "${locked[@]}" \
    --lib --tests --examples
  run cargo test -p session-bridge --no-default-features --features embedded "${locked[@]}" --doc
fi

# ---- servers ----------------------------------------------------------------
phase harness
# shellcheck source=infra/harness.sh
. "$root/infra/harness.sh"
if [ "${SB_SMOKE:-0}" = 1 ]; then
  phase smoke
  "$root/infra/lib/smoke.sh"
fi

# ---- tests ----------------------------------------------------------------
# --no-fail-fast: report every failing test binary, not just the first.
nff=(--no-fail-fast)
for a in "${sel[@]}"; do [ "$a" = --no-fail-fast ] && nff=(); done
test_rc=0
phase "cargo test"
if [ "$has_target" = 1 ]; then
  run cargo test "${pkg[@]}" "${nff[@]}" "${locked[@]}" "${sel[@]}" "${rest[@]}" || test_rc=$?
else
  run cargo test "${pkg[@]}" --all-targets "${nff[@]}" "${locked[@]}" "${sel[@]}" "${rest[@]}" || test_rc=$?
  phase "cargo test --doc"
  run cargo test "${pkg[@]}" --doc "${nff[@]}" "${locked[@]}" "${sel[@]}" "${rest[@]}" || {
    doc_rc=$?
    [ "$test_rc" != 0 ] || test_rc=$doc_rc
  }
fi

# ---- deploy checks ------------------------------------------------------------
# The container image, Kubernetes manifests and CloudFormation template
# (infra/deploy/test.sh). They run with the whole suite, or with SB_DEPLOY=1
# next to a test selection; SB_DEPLOY=0 leaves them out, and says so.
deploy=${SB_DEPLOY:-}
if [ -z "$deploy" ]; then
  deploy=1
  [ ${#sel[@]} -eq 0 ] && [ ${#rest[@]} -eq 0 ] || deploy=0
fi
if [ "$deploy" = 1 ]; then
  phase deploy
  run "$root/infra/deploy/test.sh" || {
    deploy_rc=$?
    [ "$test_rc" != 0 ] || test_rc=$deploy_rc
  }
else
  printf '\n==> deploy: NOT RUN (%s; SB_DEPLOY=1 runs it)\n' \
    "$([ "${SB_DEPLOY:-}" = 0 ] && echo "SB_DEPLOY=0" || echo "a test selection was given")" >&2
fi

# ---- fuzzing: a short run of every target ------------------------------------
# Opt-in for now (SB_FUZZ=1): the first instrumented nightly build is long.
# Meant to become the default of full runs (no arguments) once verified.
if [ "${SB_FUZZ:-0}" = 1 ]; then
  phase fuzz
  run "$root/infra/fuzz.sh" "${SB_FUZZ_SECS:-10}" || {
    fuzz_rc=$?
    [ "$test_rc" != 0 ] || test_rc=$fuzz_rc
  }
fi
phase_end
exit "$test_rc"
