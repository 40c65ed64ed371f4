#!/usr/bin/env bash
# Control one harness-started Redis: stop / start / restart / status.
#
# usage: redis-ctl.sh DIR {stop|start|restart|status}
#
# DIR holds redis.conf (with `port N` and `pidfile`). `stop` returns once the
# port is closed; `start` once PING answers. The harness writes a wrapper
# (exported as SB_REDIS_CTL) that calls this script with DIR filled in.
set -euo pipefail

usage="usage: redis-ctl.sh DIR stop|start|restart|status"
dir=${1:?$usage}
cmd=${2:?$usage}
conf=$dir/redis.conf
port=$(awk '$1 == "port" { print $2; exit }' "$conf")
pidfile=$(awk '$1 == "pidfile" { print $2; exit }' "$conf")
timeout=${SB_REDIS_CTL_TIMEOUT:-15}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
pong() { [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; }
# Alive and not a zombie (daemonized servers are reaped late by PID 1).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != [ZX] ]]
}

do_stop() {
  local pid=""
  [ -f "$pidfile" ] && pid=$(tr -dc '0-9' <"$pidfile")
  if [ -n "$pid" ] && alive "$pid"; then
    kill -TERM "$pid"
  elif port_open; then
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
  fi
  local i
  for ((i = 0; i < timeout * 20; i++)); do
    if ! port_open && { [ -z "$pid" ] || ! alive "$pid"; }; then
      return 0
    fi
    sleep 0.05
  done
  echo "redis-ctl: redis on port $port did not stop within ${timeout}s" >&2
  return 1
}

do_start() {
  if pong; then
    return 0
  fi
  if port_open; then
    echo "redis-ctl: port $port is open but does not answer PING" >&2
    return 1
  fi
  (cd "$dir" && redis-server "$conf")
  local i
  for ((i = 0; i < timeout * 20; i++)); do
    pong && return 0
    sleep 0.05
  done
  echo "redis-ctl: redis on port $port did not answer PING within ${timeout}s; log:" >&2
  tail -n 20 "$dir/redis.log" >&2 || true
  return 1
}

case $cmd in
  stop) do_stop ;;
  start) do_start ;;
  restart) do_stop && do_start ;;
  status)
    if pong; then echo up; else echo down; exit 1; fi
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
