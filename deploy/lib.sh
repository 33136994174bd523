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
