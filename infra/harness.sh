# shellcheck shell=bash
# session-bridge test harness: installs what the integration tests need and
# starts real servers on 127.0.0.1 (free ports), then exports where they are.
#
#   . infra/harness.sh          # install (if needed) + start + export SB_* vars
#   cargo test ...
#   harness_stop                # kill everything it started, remove its run dir
#
# Meant to be sourced (by infra/test.sh or by a developer's bash). All state
# lives in infra/.run/<run-id>/; the exported variables are also written to
# infra/.run/<run-id>/env (and infra/.run/current/env) for other shells.
# See infra/README.md.

if [ -z "${BASH_VERSION:-}" ]; then
  echo "infra/harness.sh: must be sourced from bash" >&2
  # shellcheck disable=SC2317
  return 1 2>/dev/null || exit 1
fi
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "infra/harness.sh: source it: '. infra/harness.sh' (then 'harness_stop')" >&2
  exit 2
fi

_SB_INFRA=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
_SB_RUN_ROOT=$_SB_INFRA/.run
_SB_TIMEOUT=${SB_HARNESS_TIMEOUT:-30}
_SB_EXPORTS=(SB_REDIS_URL SB_REDIS_CTL SB_REDIS_CLUSTER_URL SB_REDIS_SENTINEL_URL
  SB_MOTO_URL SB_AWS_REGION SB_OIDC_URL SB_PYTHON SB_TEST_OUT SB_RUN_DIR)

_sb_log() { printf 'harness: %s\n' "$*" >&2; }
_sb_err() { printf 'harness: ERROR: %s\n' "$*" >&2; }
_sb_ms() { date +%s%3N; }
# PID alive and not a zombie (our servers are reparented to PID 1, which may
# reap them late).
_sb_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != [ZX] ]]
}

# sha256 of the given files' contents (missing files hash as empty).
_sb_hash() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# ------------------------------------------------------------- install ----

_sb_apt_install() {
  local log=$_SB_RUN_ROOT/install-apt.log
  if [ "$(id -u)" -ne 0 ]; then
    _sb_err "missing Debian packages: $*; install them (apt-get install $*) or run as root"
    return 1
  fi
  _sb_log "apt-get install $*"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >"$log" 2>&1; then
    _sb_log "apt-get install failed; running apt-get update and retrying"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update >>"$log" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1; }; then
      tail -n 20 "$log" >&2
      _sb_err "could not install Debian packages: $* (log: $log)"
      return 1
    fi
  fi
}

_sb_install_system() {
  local need=()
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
  command -v flock >/dev/null 2>&1 || need+=(util-linux)
  command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
  if [ ${#need[@]} -gt 0 ]; then
    _sb_apt_install "${need[@]}" || return 1
  fi
  local c
  for c in redis-server redis-cli flock python3; do
    if ! command -v "$c" >/dev/null 2>&1; then
      _sb_err "'$c' is still missing after installing packages"
      return 1
    fi
  done
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    _sb_err "Node.js >= 20 with npm is required (for the OIDC test provider) and was not found"
    return 1
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || major=0
  if [ "${major:-0}" -lt 20 ]; then
    _sb_err "Node.js >= 20 is required for oidc-provider 9; found $(node --version 2>/dev/null)"
    return 1
  fi
}

_sb_install_venv() {
  local venv=$_SB_INFRA/.venv req=$_SB_INFRA/requirements.txt
  local stamp=$venv/.sb-stamp log=$_SB_RUN_ROOT/install-venv.log want
  want=$(_sb_hash "$req")
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c '' 2>/dev/null &&
    [ -x "$venv/bin/moto_server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  _sb_log "installing Python packages into infra/.venv (requirements.txt changed or venv missing)"
  if ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >"$log" 2>&1; then
      rm -rf "$venv"
      _sb_apt_install python3-venv || return 1
      if ! python3 -m venv "$venv" >>"$log" 2>&1; then
        tail -n 20 "$log" >&2
        _sb_err "could not create the virtualenv infra/.venv (log: $log)"
        return 1
      fi
    fi
  fi
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$req" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    _sb_err "pip install -r infra/requirements.txt failed (log: $log)"
    return 1
  fi
  if [ ! -x "$venv/bin/moto_server" ]; then
    _sb_err "moto_server missing from infra/.venv after pip install (log: $log)"
    return 1
  fi
  printf '%s\n' "$want" >"$stamp"
}

_sb_install_npm() {
  local nm=$_SB_INFRA/node_modules log=$_SB_RUN_ROOT/install-npm.log want
  want="$(_sb_hash "$_SB_INFRA/package.json" "$_SB_INFRA/package-lock.json") $(node --version)"
  if [ -d "$nm/oidc-provider" ] && [ "$(cat "$nm/.sb-stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  if [ ! -f "$_SB_INFRA/package-lock.json" ]; then
    _sb_err "infra/package-lock.json is missing (run 'npm install' in infra/ and commit it)"
    return 1
  fi
  _sb_log "npm ci in infra/ (package-lock.json changed or node_modules missing)"
  if ! (cd "$_SB_INFRA" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    _sb_err "npm ci in infra/ failed (log: $log)"
    return 1
  fi
  printf '%s\n' "$want" >"$nm/.sb-stamp"
}

# Installs everything, serialised across parallel harness runs.
harness_install() {
  mkdir -p "$_SB_RUN_ROOT" || return 1
  _sb_install_system || return 1
  _sb_install_proxies || return 1
  _sb_install_chromium || return 1
  _sb_install_php || return 1
  (
    flock 9 || exit 1
    _sb_install_venv || exit 1
    _sb_install_npm || exit 1
  ) 9>"$_SB_RUN_ROOT/.install.lock"
}

# ------------------------------------------------------------- helpers ----

# Kill the processes of runs whose owning shell is gone (e.g. SIGKILLed test
# runs); their logs stay. Run dirs of dead owners older than a day are removed.
_sb_gc() {
  local d owner
  for d in "$_SB_RUN_ROOT"/*/; do
    d=${d%/}
    [ -f "$d/owner" ] || continue
    [ -L "$d" ] && continue
    owner=$(tr -dc '0-9' <"$d/owner")
    if [ -n "$owner" ] && _sb_alive "$owner"; then
      continue
    fi
    if [ -f "$d/ports" ]; then
      _sb_log "cleaning up orphaned run $d"
      "$_SB_INFRA/lib/stop-run.sh" "$d" 1 || true
    fi
  done
  find "$_SB_RUN_ROOT" -mindepth 1 -maxdepth 1 -type d -mmin +1440 -print0 2>/dev/null |
    while IFS= read -r -d '' d; do
      owner=$(tr -dc '0-9' <"$d/owner" 2>/dev/null) || owner=""
      if [ -z "$owner" ] || ! _sb_alive "$owner"; then
        "$_SB_INFRA/lib/stop-run.sh" "$d" 0 || true
      fi
    done
}

# _sb_spawn DIR NAME CMD...: run CMD in the background from DIR, in its own
# session (immune to the terminal's Ctrl-C: harness_stop ends it), logging to
# DIR/NAME.log, its PID in DIR/NAME.pid. Not added to the shell's job table.
_sb_spawn() {
  local dir=$1 name=$2
  shift 2
  (
    cd "$dir" || exit 1
    setsid "$@" >"$dir/$name.log" 2>&1 </dev/null &
    echo $! >"$dir/$name.pid"
  )
}

# _sb_redis_conf DIR PORT [extra config lines...]: write DIR/redis.conf
_sb_redis_conf() {
  local dir=$1 port=$2 line
  shift 2
  mkdir -p "$dir" || return 1
  {
    echo "port $port"
    echo "bind 127.0.0.1"
    echo "protected-mode yes"
    echo "daemonize yes"
    echo "pidfile $dir/redis.pid"
    echo "logfile $dir/redis.log"
    echo "dir $dir"
    echo 'save ""'
    echo "appendonly no"
    for line in "$@"; do echo "$line"; done
  } >"$dir/redis.conf"
}

_sb_redis_start() { # DIR
  (cd "$1" && redis-server "$1/redis.conf") >>"$1/start.log" 2>&1
}

_sb_fail_log() { # NAME LOG WHY
  _sb_err "$1 $3"
  if [ -f "$2" ]; then
    echo "---- last lines of $2 ----" >&2
    tail -n 25 "$2" >&2
    echo "----" >&2
  fi
}

# _sb_wait NAME LOG PIDFILE CHECK...: poll CHECK until it succeeds; fail if the
# process behind PIDFILE died or after $_SB_TIMEOUT seconds.
_sb_wait() {
  local name=$1 log=$2 pidfile=$3 deadline pid
  shift 3
  deadline=$(($(_sb_ms) + _SB_TIMEOUT * 1000))
  while :; do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if [ -f "$pidfile" ]; then
      pid=$(tr -dc '0-9' <"$pidfile" 2>/dev/null) || pid=""
      if [ -n "$pid" ] && ! _sb_alive "$pid"; then
        _sb_fail_log "$name" "$log" "exited during startup"
        return 1
      fi
    fi
    if [ -f "$log" ] && grep -qE 'Could not create server TCP|FATAL|Address already in use' "$log" 2>/dev/null; then
      _sb_fail_log "$name" "$log" "failed to start"
      return 1
    fi
    if [ "$(_sb_ms)" -gt "$deadline" ]; then
      _sb_fail_log "$name" "$log" "did not become ready within ${_SB_TIMEOUT}s"
      return 1
    fi
    sleep 0.05
  done
}

_sb_pong() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }
_sb_cluster_ok() { [[ $(redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null) == *cluster_state:ok* ]]; }
_sb_replica_up() { [[ $(redis-cli -h 127.0.0.1 -p "$1" info replication 2>/dev/null) == *master_link_status:up* ]]; }
_sb_sentinel_ready() { # SPORT MPORT: sentinel knows the master and its replica
  local addr replicas
  addr=$(redis-cli -h 127.0.0.1 -p "$1" sentinel get-master-addr-by-name mymaster 2>/dev/null | tr '\n' ' ')
  [ "$addr" = "127.0.0.1 $2 " ] || return 1
  replicas=$(redis-cli -h 127.0.0.1 -p "$1" sentinel master mymaster 2>/dev/null |
    awk 'prev == "num-slaves" { print; exit } { prev = $0 }')
  [ "${replicas:-0}" -ge 1 ]
}
_sb_http_ok() { # URL
  "$_SB_INFRA/.venv/bin/python" - "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}
_sb_file_nonempty() { [ -s "$1" ]; }

# ----------------------------------------------------------------- PHP ----
# PHP 8.2 (`php -S`) serving infra/php/ with phpredis's session handler on
# the standalone Redis, for the legacy-session tests of adapters/php.
# php-fpm (Debian's `php-fpm`) is installed only: the gateway tests start
# their own on a free port, to check identity headers as FastCGI apps see
# them.

_SB_EXPORTS+=(SB_PHP_URL SB_PHP_FPM_BIN)

_sb_php_ok() { php -r 'exit(extension_loaded("redis") ? 0 : 1);' >/dev/null 2>&1; }

# The php-fpm binary (Debian names it php-fpm<version> in /usr/sbin).
_sb_php_fpm_bin() {
  local f
  if command -v php-fpm >/dev/null 2>&1; then
    command -v php-fpm
    return 0
  fi
  for f in /usr/sbin/php-fpm*; do
    [ -x "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

_sb_install_php() {
  local need=()
  _sb_php_ok || need+=(php-cli php-redis)
  _sb_php_fpm_bin >/dev/null || need+=(php-fpm)
  if [ ${#need[@]} -gt 0 ]; then
    # Debian's php-fpm enables a system service; policy-rc.d usually keeps
    # it from starting in containers, and the tests never use it.
    _sb_apt_install "${need[@]}" || return 1
  fi
  if ! _sb_php_ok; then
    _sb_err "php with the redis extension is still missing after installing php-cli php-redis"
    return 1
  fi
  if ! SB_PHP_FPM_BIN=$(_sb_php_fpm_bin); then
    _sb_err "php-fpm is still missing after installing php-fpm"
    return 1
  fi
  export SB_PHP_FPM_BIN
}

# _sb_start_php RUN_DIR REDIS_PORT: start php -S on a free port, export SB_PHP_URL.
_sb_start_php() {
  local d=$1 p_redis=$2 p_php
  p_php=$(flock "$_SB_RUN_ROOT/.ports.lock" "$_SB_INFRA/.venv/bin/python" "$_SB_INFRA/lib/freeports.py" 1 "$_SB_RUN_ROOT" "$d/ports") || {
    _sb_err "could not pick a free port for php"
    return 1
  }
  # The pages are copied into the run dir so the server's working directory
  # stays inside it (lib/stop-run.sh only stops processes running from there).
  mkdir -p "$d/php/www" && cp "$_SB_INFRA"/php/*.php "$d/php/www/" || return 1
  _sb_spawn "$d/php" php php -S "127.0.0.1:$p_php" -t "$d/php/www" -c "$_SB_INFRA/php/php.ini" \
    -d "session.save_path=tcp://127.0.0.1:$p_redis" || return 1
  _sb_wait "php (port $p_php)" "$d/php/php.log" "$d/php/php.pid" \
    _sb_http_ok "http://127.0.0.1:$p_php/health.php" || return 1
  export SB_PHP_URL="http://127.0.0.1:$p_php"
}

# ------------------------------------------------------------ Chromium ----
# Debian's chromium + chromium-driver for the demo's browser test
# (tests/it/demo.rs starts chromedriver itself on a free port and drives a
# headless Chromium with a fresh profile). Nothing is started here: only the
# two paths are exported. The two packages come from one source package, so
# installing them together keeps their versions matched.

_SB_EXPORTS+=(SB_CHROMIUM SB_CHROMEDRIVER)

_sb_major() { "$1" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9.]+' | head -n 1 | cut -d. -f1; }

_sb_install_chromium() {
  local need=()
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 ||
    [ "$(_sb_major chromium)" != "$(_sb_major chromedriver)" ]; then
    need+=(chromium chromium-driver)
  fi
  # Without any font, text renders as empty boxes in the screenshots.
  if ! fc-list 2>/dev/null | grep -q .; then
    need+=(fonts-dejavu-core)
  fi
  if [ ${#need[@]} -gt 0 ]; then
    _sb_apt_install "${need[@]}" || return 1
  fi
  if ! SB_CHROMIUM=$(command -v chromium) || ! SB_CHROMEDRIVER=$(command -v chromedriver); then
    _sb_err "chromium or chromedriver is still missing after installing chromium chromium-driver"
    return 1
  fi
  export SB_CHROMIUM SB_CHROMEDRIVER
}

# ------------------------------------------------- nginx and Caddy ----
# Installed only: the gateway tests (tests/it/gateway) start their own nginx
# and Caddy on free ports with configs rendered from infra/nginx/ and
# infra/caddy/, because the bridge and upstream ports are per test.

_SB_EXPORTS+=(SB_NGINX_BIN SB_CADDY_BIN)

_sb_install_proxies() {
  local need=()
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
  command -v caddy >/dev/null 2>&1 || need+=(caddy)
  if [ ${#need[@]} -gt 0 ]; then
    # Debian's packages enable a system service; in containers policy-rc.d
    # usually keeps it from starting, and the tests never use it.
    _sb_apt_install "${need[@]}" || return 1
  fi
  SB_NGINX_BIN=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
  SB_CADDY_BIN=$(command -v caddy 2>/dev/null || true)
  if [ ! -x "$SB_NGINX_BIN" ] || [ -z "$SB_CADDY_BIN" ]; then
    _sb_err "nginx or caddy is still missing after installing them"
    return 1
  fi
  # No pipe into `grep -q`: under pipefail its early exit can fail the check.
  if [[ $("$SB_NGINX_BIN" -V 2>&1) != *--with-http_auth_request_module* ]]; then
    _sb_err "$SB_NGINX_BIN lacks the auth_request module"
    return 1
  fi
  export SB_NGINX_BIN SB_CADDY_BIN
}

# --------------------------------------------------------------- start ----

harness_start() {
  local t0 t1 d
  t0=$(_sb_ms)
  if [ -n "${SB_RUN_DIR:-}" ] && [ -d "${SB_RUN_DIR:-}" ] && [ -f "$SB_RUN_DIR/ports" ]; then
    _sb_err "a harness is already running in this shell ($SB_RUN_DIR); run harness_stop first"
    return 1
  fi
  harness_install || return 1
  t1=$(_sb_ms)
  _sb_gc

  d=$(mktemp -d "$_SB_RUN_ROOT/$(date +%Y%m%d-%H%M%S)-XXXXXX") || {
    _sb_err "cannot create a run dir under $_SB_RUN_ROOT"
    return 1
  }
  echo "$$" >"$d/owner"
  SB_RUN_DIR=$d
  if ! _sb_start_all "$d"; then
    _sb_err "harness failed to start; stopping what was started (logs kept in $d)"
    harness_stop 1
    return 1
  fi
  _sb_log "ready in $(($(_sb_ms) - t0)) ms (install check $((t1 - t0)) ms); run dir $d"
  _sb_log "env: $d/env (also $_SB_RUN_ROOT/current/env); stop with: harness_stop"
}

_sb_start_all() {
  local d=$1 ports p_redis p_c1 p_c2 p_c3 b_c1 b_c2 b_c3 p_m p_r p_s p_moto p_oidc
  ports=$(flock "$_SB_RUN_ROOT/.ports.lock" "$_SB_INFRA/.venv/bin/python" "$_SB_INFRA/lib/freeports.py" 12 "$_SB_RUN_ROOT" "$d/ports") || {
    _sb_err "could not pick free ports"
    return 1
  }
  read -r p_redis p_c1 p_c2 p_c3 b_c1 b_c2 b_c3 p_m p_r p_s p_moto p_oidc <<<"$ports"
  mkdir -p "$d/out" "$d/moto" "$d/oidc" "$d/cluster" || return 1

  # Slow starters first, in the background.
  _sb_spawn "$d/moto" moto "$_SB_INFRA/.venv/bin/moto_server" -H 127.0.0.1 -p "$p_moto" || return 1
  (
    export HOST=127.0.0.1 PORT=$p_oidc SB_OIDC_PORT_FILE=$d/oidc/port
    _sb_spawn "$d/oidc" oidc node "$_SB_INFRA/oidc/server.js"
  ) || return 1

  # a. standalone Redis
  _sb_redis_conf "$d/redis" "$p_redis" || return 1
  _sb_redis_start "$d/redis" || { _sb_fail_log redis "$d/redis/start.log" "failed to start"; return 1; }
  # b. cluster nodes
  local i ps=("$p_c1" "$p_c2" "$p_c3") bs=("$b_c1" "$b_c2" "$b_c3")
  for i in 0 1 2; do
    _sb_redis_conf "$d/cluster/${ps[i]}" "${ps[i]}" "cluster-enabled yes" \
      "cluster-config-file nodes.conf" "cluster-node-timeout 5000" "cluster-port ${bs[i]}" || return 1
    _sb_redis_start "$d/cluster/${ps[i]}" || {
      _sb_fail_log "cluster node ${ps[i]}" "$d/cluster/${ps[i]}/start.log" "failed to start"
      return 1
    }
  done
  # c. sentinel's master + replica
  _sb_redis_conf "$d/sentinel/master" "$p_m" "repl-diskless-sync-delay 0" || return 1
  _sb_redis_conf "$d/sentinel/replica" "$p_r" "replicaof 127.0.0.1 $p_m" "repl-diskless-sync-delay 0" || return 1
  _sb_redis_start "$d/sentinel/master" || { _sb_fail_log "sentinel master" "$d/sentinel/master/start.log" "failed to start"; return 1; }
  _sb_redis_start "$d/sentinel/replica" || { _sb_fail_log "sentinel replica" "$d/sentinel/replica/start.log" "failed to start"; return 1; }

  # Wait for the Redis servers, then wire the cluster and the sentinel.
  _sb_wait "redis (standalone, port $p_redis)" "$d/redis/redis.log" "$d/redis/redis.pid" _sb_pong "$p_redis" || return 1
  for i in 0 1 2; do
    _sb_wait "cluster node ${ps[i]}" "$d/cluster/${ps[i]}/redis.log" "$d/cluster/${ps[i]}/redis.pid" \
      _sb_pong "${ps[i]}" || return 1
  done
  if ! redis-cli --cluster create "127.0.0.1:$p_c1" "127.0.0.1:$p_c2" "127.0.0.1:$p_c3" \
    --cluster-replicas 0 --cluster-yes >"$d/cluster/create.log" 2>&1; then
    _sb_fail_log "redis cluster" "$d/cluster/create.log" "'redis-cli --cluster create' failed"
    return 1
  fi
  _sb_wait "sentinel master (port $p_m)" "$d/sentinel/master/redis.log" "$d/sentinel/master/redis.pid" _sb_pong "$p_m" || return 1
  _sb_wait "sentinel replica (port $p_r)" "$d/sentinel/replica/redis.log" "$d/sentinel/replica/redis.pid" _sb_replica_up "$p_r" || return 1
  mkdir -p "$d/sentinel/sentinel" || return 1
  {
    echo "port $p_s"
    echo "bind 127.0.0.1"
    echo "daemonize yes"
    echo "pidfile $d/sentinel/sentinel/redis.pid"
    echo "logfile $d/sentinel/sentinel/redis.log"
    echo "dir $d/sentinel/sentinel"
    echo "sentinel monitor mymaster 127.0.0.1 $p_m 1"
    echo "sentinel down-after-milliseconds mymaster 2000"
    echo "sentinel failover-timeout mymaster 10000"
    echo "sentinel parallel-syncs mymaster 1"
  } >"$d/sentinel/sentinel/sentinel.conf"
  if ! (cd "$d/sentinel/sentinel" && redis-server "$d/sentinel/sentinel/sentinel.conf" --sentinel) \
    >>"$d/sentinel/sentinel/start.log" 2>&1; then
    _sb_fail_log sentinel "$d/sentinel/sentinel/start.log" "failed to start"
    return 1
  fi
  for i in 0 1 2; do
    _sb_wait "redis cluster (node ${ps[i]})" "$d/cluster/${ps[i]}/redis.log" "$d/cluster/${ps[i]}/redis.pid" \
      _sb_cluster_ok "${ps[i]}" || return 1
  done
  _sb_wait "redis sentinel (port $p_s)" "$d/sentinel/sentinel/redis.log" "$d/sentinel/sentinel/redis.pid" \
    _sb_sentinel_ready "$p_s" "$p_m" || return 1

  # d/e. moto and the OIDC provider
  _sb_wait "moto_server (port $p_moto)" "$d/moto/moto.log" "$d/moto/moto.pid" \
    _sb_http_ok "http://127.0.0.1:$p_moto/moto-api/" || return 1
  _sb_wait "oidc provider (port $p_oidc)" "$d/oidc/oidc.log" "$d/oidc/oidc.pid" \
    _sb_file_nonempty "$d/oidc/port" || return 1
  _sb_wait "oidc provider (port $p_oidc)" "$d/oidc/oidc.log" "$d/oidc/oidc.pid" \
    _sb_http_ok "http://127.0.0.1:$p_oidc/__test/health" || return 1

  # f. PHP on the standalone Redis (section "PHP" above)
  _sb_start_php "$d" "$p_redis" || return 1

  # SB_REDIS_CTL: a wrapper bound to this run's standalone Redis.
  printf '#!/usr/bin/env bash\nexec %q %q "$@"\n' "$_SB_INFRA/lib/redis-ctl.sh" "$d/redis" >"$d/redis-ctl"
  chmod +x "$d/redis-ctl"

  export SB_RUN_DIR=$d
  export SB_REDIS_URL="redis://127.0.0.1:$p_redis"
  export SB_REDIS_CTL="$d/redis-ctl"
  export SB_REDIS_CLUSTER_URL="redis-cluster://127.0.0.1:$p_c1?node=127.0.0.1:$p_c2&node=127.0.0.1:$p_c3"
  export SB_REDIS_SENTINEL_URL="redis-sentinel://127.0.0.1:$p_s?sentinelServiceName=mymaster"
  export SB_MOTO_URL="http://127.0.0.1:$p_moto"
  export SB_AWS_REGION=us-east-1
  export SB_OIDC_URL="http://127.0.0.1:$p_oidc"
  export SB_PYTHON="$_SB_INFRA/.venv/bin/python"
  export SB_TEST_OUT="$d/out"

  local v
  {
    echo "# session-bridge test harness, run $d"
    echo "# source this file from another shell; stop with: $_SB_INFRA/lib/stop-run.sh $d"
    for v in "${_SB_EXPORTS[@]}"; do
      printf 'export %s=%q\n' "$v" "${!v}"
    done
  } >"$d/env"
  ln -sfn "$(basename "$d")" "$_SB_RUN_ROOT/current"
}

# ---------------------------------------------------------------- stop ----

# harness_stop [STATUS]: stop everything this shell's harness started and
# remove its run dir. The run dir (logs, $SB_TEST_OUT) is kept when STATUS is
# non-zero or SB_KEEP_RUN=1.
harness_stop() {
  local rc=${1:-0} d=${SB_RUN_DIR:-} keep=0 v
  if [ -z "$d" ]; then
    return 0
  fi
  if [ "$rc" != 0 ] || [ "${SB_KEEP_RUN:-0}" = 1 ]; then
    keep=1
  fi
  local ok=0
  "$_SB_INFRA/lib/stop-run.sh" "$d" "$keep" || ok=1
  if [ "$keep" = 1 ] && [ -d "$d" ]; then
    _sb_log "stopped; logs and test output kept in $d"
  fi
  for v in "${_SB_EXPORTS[@]}"; do
    unset "$v"
  done
  return "$ok"
}

# Run from an `||` list so the caller's `set -e` does not cut the start short:
# every step checks its own result, reports it, and cleans up.
harness_start || return $?
