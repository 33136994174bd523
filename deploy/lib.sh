# shellcheck shell=bash
# Shared by deploy/*/*.sh (sourced, not run).

# stop_pid NAME PID SECONDS: TERM, wait up to SECONDS, then KILL.
stop_pid() {
  local name="$1" pid="$2" seconds="$3" i
  echo "$name: stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < seconds * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  echo "$name: still alive after ${seconds}s; sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 1
}

# ensure_redis_server NAME: redis-server and redis-cli on PATH, installed with apt-get
# (Debian package redis-server) when missing and running as root.
ensure_redis_server() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "$1: ERROR: redis-server not found: install redis-server (Debian: apt-get install redis-server)" >&2
    exit 1
  fi
  echo "$1: redis-server not found; installing it with apt-get (Debian package redis-server)..."
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  command -v redis-server >/dev/null || { echo "$1: ERROR: apt-get did not provide redis-server" >&2; exit 1; }
}
