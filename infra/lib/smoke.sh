#!/usr/bin/env bash
# Check that every service of a running harness answers, using the exported
# SB_* variables (source infra/harness.sh or infra/.run/current/env first).
# Leaves the OIDC provider with a rotated signing key and moto with a table.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
: "${SB_REDIS_URL:?source infra/harness.sh or infra/.run/current/env first}"

say() { printf 'smoke: %-28s %s\n' "$1" "$2"; }

# Redis standalone + SB_REDIS_CTL
[ "$(redis-cli -u "$SB_REDIS_URL" ping)" = PONG ]
say "redis" "PONG ($SB_REDIS_URL)"
redis-cli -u "$SB_REDIS_URL" set sb:smoke 1 >/dev/null
"$SB_REDIS_CTL" stop
if redis-cli -u "$SB_REDIS_URL" ping >/dev/null 2>&1; then
  echo "smoke: redis still answers after SB_REDIS_CTL stop" >&2
  exit 1
fi
if "$SB_REDIS_CTL" status >/dev/null; then
  echo "smoke: SB_REDIS_CTL status says up after stop" >&2
  exit 1
fi
say "redis ctl stop" "down"
"$SB_REDIS_CTL" start
[ "$(redis-cli -u "$SB_REDIS_URL" ping)" = PONG ]
[ -z "$(redis-cli -u "$SB_REDIS_URL" get sb:smoke)" ] # no persistence
"$SB_REDIS_CTL" restart
[ "$("$SB_REDIS_CTL" status)" = up ]
say "redis ctl start/restart" "up, data gone (no persistence)"

# Cluster: every node says ok; a key routed with -c
seed=${SB_REDIS_CLUSTER_URL#redis-cluster://}
seed=${seed%%\?*}
nodes=("$seed")
rest=${SB_REDIS_CLUSTER_URL#*\?}
IFS='&' read -r -a params <<<"$rest"
for p in "${params[@]}"; do nodes+=("${p#node=}"); done
for n in "${nodes[@]}"; do
  info=$(redis-cli -h "${n%:*}" -p "${n#*:}" cluster info)
  [[ $info == *cluster_state:ok* ]]
done
redis-cli -c -h "${seed%:*}" -p "${seed#*:}" set "sb:{a}" 1 >/dev/null
redis-cli -c -h "${seed%:*}" -p "${seed#*:}" set "sb:{b}" 1 >/dev/null
say "redis cluster" "cluster_state:ok on ${nodes[*]}"

# Sentinel
s=${SB_REDIS_SENTINEL_URL#redis-sentinel://}
s=${s%%\?*}
addr=$(redis-cli -h "${s%:*}" -p "${s#*:}" sentinel get-master-addr-by-name mymaster | paste -sd' ')
[ -n "$addr" ]
mp=$(echo "$addr" | awk '{print $2}')
[ "$(redis-cli -h 127.0.0.1 -p "$mp" ping)" = PONG ]
say "redis sentinel" "mymaster at $addr"

# moto, OIDC (HTTP, boto3, PyJWT)
"$SB_PYTHON" "$here/smoke.py"
echo "smoke: all services OK"
