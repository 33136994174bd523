#!/usr/bin/env bash
# Local Redis for xpbank dev/tests: a throw-away, non-persistent redis-server on 127.0.0.1.
#
#   bash deploy/redis/redis.sh up      start (idempotent; installs redis-server via apt if missing and root)
#   bash deploy/redis/redis.sh down    stop the redis started by this script (never touches any other redis)
#   bash deploy/redis/redis.sh status  exit 0 if a redis answers PING on the port, 1 otherwise
#   bash deploy/redis/redis.sh install installs redis-server via apt if missing and root (`make bench` starts its own)
#
# URL: redis://127.0.0.1:${XPBANK_REDIS_PORT:-6379}/0
# No persistence (--save '' --appendonly no): every fresh 'up' starts empty.
# If some other redis already answers PONG on the port, 'up' accepts it as is (and 'down' leaves it alone).
#
# --secure (with up, down, status): a second redis-server in <root>/redis-secure on
# 127.0.0.1:${XPBANK_REDIS_SECURE_PORT:-6380} with a password and TLS; `up --secure` writes the xpbank client
# settings to <root>/redis/secure.env. See deploy/redis/secure.sh.
#
# Environment:
#   XPBANK_REDIS_PORT  port (default 6379)
#   XPBANK_REDIS_SECURE_PORT  port of the --secure one (default 6380)
#   XPBANK_RUN_DIR     runtime root (default <repo>/.run; this script uses <root>/redis: redis.pid, redis.log;
#                      with --secure <root>/redis-secure: the same, and redis.conf, tls/, secrets/)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/lib.sh
source "$SCRIPT_DIR/../lib.sh"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

usage() {
  echo "usage: $0 up [--secure] | down [--secure] | status [--secure] | install" >&2
  exit 2
}
ACTION="${1:-}"
[[ $# -gt 0 ]] && shift
SECURE=0
for arg in "$@"; do
  [[ "$arg" == --secure ]] || usage
  SECURE=1
done

NAME=redis  # in messages; redis-secure for --secure
HOST=127.0.0.1
PORT="${XPBANK_REDIS_PORT:-6379}"
RUN_ROOT="${XPBANK_RUN_DIR:-$REPO_ROOT/.run}"
RUN_DIR="$RUN_ROOT/redis"
if ((SECURE)); then
  # shellcheck source=deploy/redis/secure.sh
  source "$SCRIPT_DIR/secure.sh"  # sets NAME, PORT, RUN_DIR; defines secure_*
fi
PID_FILE="$RUN_DIR/redis.pid"
LOG_FILE="$RUN_DIR/redis.log"

log() { echo "$NAME: $*"; }
die() { echo "$NAME: ERROR: $*" >&2; exit 1; }

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$PORT" 2>/dev/null; }

# True if a redis answers PONG on $HOST:$PORT (redis-cli if installed, else raw RESP over /dev/tcp).
pong() {
  if ((SECURE)); then
    secure_pong
  elif command -v redis-cli >/dev/null; then
    [[ "$(timeout 3 redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null)" == "PONG" ]]
  else
    timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$PORT && printf 'PING\r\n' >&3 && IFS= read -r l <&3 && [[ \"\$l\" == '+PONG'* ]]" 2>/dev/null
  fi
}

# Prints the pid from our pid file if it is a live redis-server started by this script
# (redis rewrites its argv to "redis-server host:port", so also check its working dir == $RUN_DIR).
our_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # (Debian's /usr/bin/redis-server is a symlink to redis-check-rdb, so test the name, not the exe.)
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmdline" == *redis-server* ]] || return 1
  [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$(cd "$RUN_DIR" && pwd -P)" ]] || return 1
  echo "$pid"
}

ensure_installed() {
  command -v redis-server >/dev/null && return 0
  if [[ "$(id -u)" -ne 0 ]]; then
    die "redis-server not found: install redis-server (Debian: apt-get install redis-server)"
  fi
  log "redis-server not found; installing it with apt-get (Debian package redis-server)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server >/dev/null
  command -v redis-server >/dev/null || die "apt-get install redis-server did not provide redis-server"
}

cmd_up() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"   # serialise concurrent up/down; redis must not inherit fd 9
  flock 9

  if ((SECURE)); then ensure_installed; fi  # its redis-cli answers the secured PINGs
  local pid
  if pid="$(our_pid)" && pong; then
    echo "$NAME already running (pid $pid) on $HOST:$PORT"
    if ((SECURE)); then secure_after_ready; fi
    return 0
  fi
  if [[ -z "${pid:-}" ]]; then
    rm -f "$PID_FILE"
    if ((SECURE)) && port_open; then  # we would not know its password
      die "port $HOST:$PORT is in use by a process not started by this script. Stop it, or set XPBANK_REDIS_SECURE_PORT."
    fi
    if pong; then
      echo "redis already answering on $HOST:$PORT (not started by this script; using it as is)"
      return 0
    fi
    if port_open; then
      die "port $HOST:$PORT is in use by something that is not redis. Stop it, or set XPBANK_REDIS_PORT."
    fi
  fi

  ensure_installed
  if [[ -z "${pid:-}" ]] && ((SECURE)); then
    secure_start
  elif [[ -z "${pid:-}" ]]; then
    redis-server --daemonize yes --bind "$HOST" --port "$PORT" \
      --save '' --appendonly no \
      --dir "$RUN_DIR" --pidfile "$PID_FILE" --logfile "$LOG_FILE" 9>&- \
      || die "redis-server failed to start (see $LOG_FILE)"
  fi

  local i
  for ((i = 0; i < 50; i++)); do
    if pong; then
      pid="$(our_pid || echo '?')"
      if ((SECURE)); then
        echo "$NAME running (pid $pid) on $HOST:$PORT"
        secure_after_ready
      else
        echo "redis running (pid $pid); url: redis://$HOST:$PORT/0"
      fi
      return 0
    fi
    sleep 0.2
  done
  echo "---- last 40 lines of $LOG_FILE ----" >&2
  tail -n 40 "$LOG_FILE" >&2 || true
  die "redis did not answer PING on $HOST:$PORT within 10s"
}

cmd_down() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock 9

  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$PID_FILE"
    echo "$NAME not running"
    return 0
  fi
  stop_pid "$NAME" "$pid" 10
  rm -f "$PID_FILE"
  echo "$NAME stopped"
}

cmd_status() {
  local pid
  if pong; then
    if pid="$(our_pid)"; then
      echo "$NAME running (pid $pid) on $HOST:$PORT"
    else
      echo "$NAME running on $HOST:$PORT (not started by this script)"
    fi
    return 0
  fi
  echo "$NAME not running"
  return 1
}

case "$ACTION" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  install) ensure_installed ;;
  *) usage ;;
esac
