#!/usr/bin/env bash
# End-to-end load figures: wrk against the release service on loopback.
#
#   ./infra/bench/load.sh                 # embedded store
#   SB_LOAD_REDIS=redis://127.0.0.1:6390 ./infra/bench/load.sh   # Redis store
#   SB_LOAD_REPLICA=1 ./infra/bench/load.sh  # token checks against the local revocation replica
#   SB_LOAD_SECONDS=20 SB_LOAD_CONNECTIONS=32 ./infra/bench/load.sh
#
# Every case runs in the same run; the bridge is reported as a ratio to
# hand-written checks (infra/bench/baseline: axum + jsonwebtoken, and with
# Redis axum + one GET): these machines are noisy, absolute numbers are not comparable
# between runs. Needs `wrk` (Debian package `wrk`; installed when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${SB_LOAD_SECONDS:-10}
conns=${SB_LOAD_CONNECTIONS:-16}
threads=${SB_LOAD_THREADS:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/session-bridge/target}

command -v wrk >/dev/null || apt-get install -y --no-install-recommends wrk >/dev/null \
  || { apt-get update >/dev/null && apt-get install -y --no-install-recommends wrk >/dev/null; }
cargo build --release --quiet --bin session-bridge
bin=$CARGO_TARGET_DIR/release/session-bridge

dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
env_args=(SESSION_BRIDGE__LOG__FILTER=warn)
if [ -n "${SB_LOAD_REDIS:-}" ]; then
  env_args+=(SESSION_BRIDGE__STORE__KIND=redis "SESSION_BRIDGE__STORE__REDIS__URL=$SB_LOAD_REDIS")
  store=redis
else
  store=embedded
fi
if [ "${SB_LOAD_REPLICA:-0}" = 1 ]; then
  env_args+=(SESSION_BRIDGE__REVOCATION__REPLICA=true)
  store="$store+replica"
fi
# A user of our own: the development user exists only with the embedded store.
password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
printf '%s\n' "$password" | env "${env_args[@]}" "$bin" --data-dir "$dir/data" \
  users add loadtest --password-stdin >/dev/null
env "${env_args[@]}" "$bin" --data-dir "$dir/data" serve --listen "127.0.0.1:$port" >"$dir/out" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

login=$(curl -fs -D "$dir/headers" -H 'content-type: application/json' \
  -d "{\"username\":\"loadtest\",\"password\":\"$password\"}" "$url/login")
cookie() { grep -i '^set-cookie:' "$dir/headers" | sed -n "s/^[Ss]et-[Cc]ookie: \($1=[^;]*\).*/\1/p"; }
session=$(cookie sb_session)
token_cookie=$(cookie sb_token)
bearer=$(curl -fs -X POST -H "origin: $url" -H "cookie: $session" "$url/token?delivery=body" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
[ -n "$session" ] && [ -n "$token_cookie" ] && [ -n "$bearer" ] || { echo "login failed: $login"; exit 1; }

# The hand-written checks the bridge is compared with, started beside it:
# axum + jsonwebtoken verifying the same bearer against the bridge's JWKS,
# and (with Redis) axum + one GET of a session key.
cargo build --release --quiet -p session-bridge-baseline
baseline=$CARGO_TARGET_DIR/release/session-bridge-baseline
curl -fs "$url/.well-known/jwks.json" >"$dir/jwks.json"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tport=$(free_port)
"$baseline" token "127.0.0.1:$tport" "$dir/jwks.json" "$url" >"$dir/token.out" 2>&1 &
pids=($!)
if [ -n "${SB_LOAD_REDIS:-}" ]; then
  rport=$(free_port)
  redis-cli -u "$SB_LOAD_REDIS" set sess:loadtest user >/dev/null
  "$baseline" redis "127.0.0.1:$rport" "$SB_LOAD_REDIS" >"$dir/redis.out" 2>&1 &
  pids+=($!)
fi
trap 'kill "${pids[@]}" 2>/dev/null; cleanup' EXIT INT TERM
for _ in $(seq 100); do curl -fs -o /dev/null -H "authorization: Bearer $bearer" "http://127.0.0.1:$tport/" && break; sleep 0.1; done

# Commands Redis has run (INFO itself excluded), to report commands per request.
redis_calls() {
  [ -n "${SB_LOAD_REDIS:-}" ] || { echo 0; return; }
  redis-cli -u "$SB_LOAD_REDIS" info commandstats |
    awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" {n += $3} END {print n + 0}'
}

run() { # name, then wrk args
  local name=$1; shift
  local out rps p50 p99 before after requests
  before=$(redis_calls)
  out=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency "$@")
  after=$(redis_calls)
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  if grep -q 'Non-2xx' <<<"$out"; then echo "$name: non-2xx answers:"; echo "$out"; exit 1; fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rps" "$p50" "$p99" \
    "$(python3 -c "print(f'{($after - $before) / max($requests, 1):.2f}')")"
}

verify=(-H "x-original-uri: /api/orders" -H "x-original-method: GET" "$url/auth/verify")
echo "store=$store connections=$conns threads=$threads duration=${seconds}s (wrk on loopback, one run)"
{
  run "A hand-written token check (axum + jsonwebtoken)" -H "authorization: Bearer $bearer" "http://127.0.0.1:$tport/api/orders"
  run "bridge /auth/verify, bearer" -H "authorization: Bearer $bearer" "${verify[@]}"
  if [ -n "${SB_LOAD_REDIS:-}" ]; then
    run "B hand-written session check (axum + 1 Redis GET)" -H "cookie: sid=loadtest" "http://127.0.0.1:$rport/api/orders"
  fi
  run "bridge /auth/verify, session cookie" -H "cookie: $session" "${verify[@]}"
  run "healthz (no auth)" "$url/healthz"
} | tee "$dir/results" | awk -F'\t' '
  /^A / {a=$2} /^B / {b=$2}
  {
    base = ($1 ~ /bearer/) ? a : (($1 ~ /session cookie/ && b) ? b : 0)
    ratio = base ? sprintf("%.2f of %s", $2/base, ($1 ~ /bearer/) ? "A" : "B") : ""
    printf "%-52s %8.0f req/s  p50 %-8s p99 %-8s redis cmds/req %-5s %s\n", $1, $2, $3, $4, $5, ratio
  }'
