#!/usr/bin/env bash
# Short coverage-guided runs of the fuzz targets in tests/fuzz (cargo-fuzz on
# the nightly toolchain, both installed when missing). A crash fails the run;
# its input is left in tests/fuzz/artifacts/<target>/.
#
#   infra/fuzz.sh                 every target, SB_FUZZ_SECS (default 10) seconds each
#   infra/fuzz.sh 600 jwt paths   longer runs of some targets
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-${SB_FUZZ_SECS:-10}}
[ $# -gt 0 ] && shift
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
fuzz=(cargo +nightly fuzz)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir tests/fuzz)
"${fuzz[@]}" build --fuzz-dir tests/fuzz
for t in "${targets[@]}"; do
  mkdir -p "tests/fuzz/corpus/$t"
  echo "fuzz: $t for ${secs}s" >&2
  "${fuzz[@]}" run --fuzz-dir tests/fuzz "$t" "tests/fuzz/corpus/$t" "tests/fuzz/seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 || {
    echo "fuzz: $t crashed; the input is in tests/fuzz/artifacts/$t/" >&2
    exit 1
  }
done
