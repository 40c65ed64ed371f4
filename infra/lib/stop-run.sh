#!/usr/bin/env bash
# Stop every process of one harness run and (unless kept) remove its folder.
#
# usage: stop-run.sh RUN_DIR [keep]     keep=1: leave RUN_DIR (logs) in place
#
# Processes are found through the *.pid files under RUN_DIR, and a PID is only
# signalled when that process's working directory is inside RUN_DIR (every
# server the harness starts runs from its own folder there), so a recycled PID
# is never killed.
set -uo pipefail

dir=${1:?usage: stop-run.sh RUN_DIR [keep]}
keep=${2:-0}
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd -P) || exit 1

owned() {
  local cwd
  cwd=$(readlink "/proc/$1/cwd" 2>/dev/null) || return 1
  [[ $cwd == "$dir" || $cwd == "$dir"/* ]]
}

pids=()
while IFS= read -r -d '' f; do
  pid=$(tr -dc '0-9' <"$f" 2>/dev/null) || true
  [ -n "$pid" ] || continue
  if owned "$pid"; then
    pids+=("$pid")
  fi
done < <(find "$dir" -name '*.pid' -type f -print0 2>/dev/null)

alive() {
  local p out=()
  for p in "${pids[@]}"; do
    # owned() also fails for zombies (no cwd): daemonized servers are reaped
    # late by PID 1, but a zombie holds no port.
    if kill -0 "$p" 2>/dev/null && owned "$p"; then
      out+=("$p")
    fi
  done
  pids=("${out[@]}")
  [ ${#pids[@]} -gt 0 ]
}

if [ ${#pids[@]} -gt 0 ]; then
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 100); do # up to 10 s
    alive || break
    sleep 0.1
  done
  if alive; then
    echo "harness: killing (SIGKILL) ${pids[*]} in $dir" >&2
    kill -KILL "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      alive || break
      sleep 0.1
    done
  fi
  if alive; then
    echo "harness: ERROR: processes ${pids[*]} of $dir did not exit" >&2
    exit 1
  fi
fi

root=$(dirname "$dir")
# The ports are free again: stop reserving them.
rm -f "$dir/ports"
if [ "$(readlink "$root/current" 2>/dev/null)" = "$(basename "$dir")" ]; then
  rm -f "$root/current"
fi
if [ "$keep" = 1 ]; then
  exit 0
fi
rm -rf "$dir"
