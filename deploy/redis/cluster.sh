#!/usr/bin/env bash
# A local Redis Cluster for xpbank: three masters with a replica each, six non-persistent
# redis-server processes on 127.0.0.1 (Debian's redis-server, installed via apt if missing),
# made into a cluster once by `redis-cli --cluster create`.
#
#   bash deploy/redis/cluster.sh up             start the nodes that are down (the first time: create the cluster)
#   bash deploy/redis/cluster.sh down           stop every node; keeps each node's nodes.conf (the cluster's shape)
#   bash deploy/redis/cluster.sh down --purge   stop and forget the cluster: the next `up` creates a new one
#   bash deploy/redis/cluster.sh status         exit 0 if every node answers and the cluster is ok
#
# Nodes on 127.0.0.1:${XPBANK_REDIS_CLUSTER_PORT:-7101} and the five ports after it (cluster bus:
# port + 10000). `up` writes <root>/redis-cluster/cluster.env (XPBANK_REDIS_URL=redis+cluster://127.0.0.1:7101,...)
# and one pid file per node, <root>/redis-cluster/node-N.pid (N = 1..6).
#
# A node that is down is started again by `up`. One that was a master waits first (up to
# XPBANK_REDIS_CLUSTER_FAILOVER_WAIT seconds, default 30) until its replica took its slots
# over: without persistence it comes back empty, and as a master its replica would copy the
# emptiness; after the failover it rejoins as a replica of the new master and copies its data.
# No persistence (like deploy/redis/redis.sh): a shard whose master and replica both go loses
# its data, which is what xpbank's read models must survive (docs/operations.md).
#
# Environment:
#   XPBANK_REDIS_CLUSTER_PORT        the first node's port (default 7101)
#   XPBANK_REDIS_CLUSTER_NODE_TIMEOUT  cluster-node-timeout in ms (default 3000: a failover within seconds)
#   XPBANK_RUN_DIR                   runtime root (default <repo>/.run; this script uses <root>/redis-cluster)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/lib.sh
source "$SCRIPT_DIR/../lib.sh"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

usage() {
  echo "usage: $0 up | down [--purge] | status" >&2
  exit 2
}
ACTION="${1:-}"
[[ $# -gt 0 ]] && shift
PURGE=0
for arg in "$@"; do
  [[ "$ACTION" == down && "$arg" == --purge ]] || usage
  PURGE=1
done

NAME=redis-cluster
HOST=127.0.0.1
FIRST_PORT="${XPBANK_REDIS_CLUSTER_PORT:-7101}"
NODE_TIMEOUT="${XPBANK_REDIS_CLUSTER_NODE_TIMEOUT:-3000}"
FAILOVER_WAIT="${XPBANK_REDIS_CLUSTER_FAILOVER_WAIT:-30}"
NODES=(1 2 3 4 5 6)
RUN_ROOT="${XPBANK_RUN_DIR:-$REPO_ROOT/.run}"
RUN_DIR="$RUN_ROOT/redis-cluster"
ENV_FILE="$RUN_DIR/cluster.env"

log() { echo "$NAME: $*"; }
die() { echo "$NAME: ERROR: $*" >&2; exit 1; }

port_of() { echo $((FIRST_PORT + $1 - 1)); }
dir_of() { echo "$RUN_DIR/node-$1"; }
pid_file_of() { echo "$RUN_DIR/node-$1.pid"; }
cli() { timeout 5 redis-cli -h "$HOST" -p "$(port_of "$1")" "${@:2}"; }
pong() { [[ "$(cli "$1" ping 2>/dev/null)" == "PONG" ]]; }
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

# The pid of node N if it is a live redis-server started by this script (its working dir is
# the node's directory: redis rewrites its argv, so the command line alone proves little).
our_pid() {
  local pid file dir
  file="$(pid_file_of "$1")"
  dir="$(dir_of "$1")"
  [[ -f "$file" && -d "$dir" ]] || return 1
  pid="$(cat "$file" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *redis-server* ]] || return 1
  [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$(cd "$dir" && pwd -P)" ]] || return 1
  echo "$pid"
}

start_node() {
  local n="$1" port dir
  port="$(port_of "$n")"
  dir="$(dir_of "$n")"
  port_open "$port" && die "port $HOST:$port is in use by a process not started by this script (XPBANK_REDIS_CLUSTER_PORT)"
  port_open $((port + 10000)) && die "cluster bus port $HOST:$((port + 10000)) is in use by another process"
  mkdir -p "$dir"
  redis-server --daemonize yes --bind "$HOST" --port "$port" --dir "$dir" \
    --pidfile "$(pid_file_of "$n")" --logfile "$dir/redis.log" \
    --save '' --appendonly no \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout "$NODE_TIMEOUT" \
    --cluster-require-full-coverage no --cluster-replica-validity-factor 0 9>&- \
    || die "redis-server failed to start node $n (see $dir/redis.log)"
  local i
  for ((i = 0; i < 50; i++)); do
    pong "$n" && return 0
    sleep 0.2
  done
  tail -n 20 "$dir/redis.log" >&2 || true
  die "node $n did not answer PING on $HOST:$port within 10s"
}

# The node id in node N's nodes.conf ("myself" line), if it was ever part of the cluster.
saved_id() { awk '$3 ~ /myself/ {print $1}' "$(dir_of "$1")/nodes.conf" 2>/dev/null; }

# True while a live node still lists node id $1 as the master of slots (no failover yet).
still_owns_slots() {
  local id="$1" n line
  for n in "${NODES[@]}"; do
    our_pid "$n" >/dev/null && pong "$n" || continue
    line="$(cli "$n" cluster nodes 2>/dev/null | awk -v id="$id" '$1 == id')"
    [[ "$line" == *master* && "$(awk '{print NF}' <<<"$line")" -gt 8 ]]
    return
  done
  return 1  # no live node: nobody will fail it over
}

wait_for_failover() {
  local n="$1" id deadline=$((SECONDS + FAILOVER_WAIT))
  id="$(saved_id "$n")"
  [[ -n "$id" ]] || return 0
  while still_owns_slots "$id"; do
    if ((SECONDS >= deadline)); then
      log "node $n's slots were not taken over by a replica within ${FAILOVER_WAIT}s: starting it as it was"
      return 0
    fi
    sleep 0.5
  done
}

cluster_ok() { [[ "$(cli "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_state://p')" == ok ]]; }

created() { [[ -n "$(saved_id 1)" ]] && [[ "$(cli 1 cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')" -gt 1 ]]; }

create_cluster() {
  local addresses=() n
  for n in "${NODES[@]}"; do addresses+=("$HOST:$(port_of "$n")"); done
  log "creating the cluster: three masters with a replica each"
  redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >"$RUN_DIR/create.log" 2>&1 \
    || { cat "$RUN_DIR/create.log" >&2; die "redis-cli --cluster create failed"; }
}

wait_cluster_ok() {
  local n i
  for ((i = 0; i < 150; i++)); do
    local all=1
    for n in "${NODES[@]}"; do cluster_ok "$n" || all=0; done
    ((all)) && return 0
    sleep 0.2
  done
  die "the cluster is not ok after 30s (redis-cli -p $FIRST_PORT cluster nodes)"
}

# XPBANK_REDIS_URL names every node: a process starting while one is down finds the others.
write_env() {
  local n nodes=()
  for n in "${NODES[@]}"; do nodes+=("$HOST:$(port_of "$n")"); done
  cat >"$ENV_FILE" <<EOF
# Written by deploy/redis/cluster.sh: the xpbank settings of the local Redis Cluster.
XPBANK_REDIS_URL=redis+cluster://$(IFS=,; echo "${nodes[*]}")
EOF
}

cmd_up() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock 9
  ensure_redis_server "$NAME"

  local n down_replicas=() down_masters=() live=0
  for n in "${NODES[@]}"; do
    if our_pid "$n" >/dev/null; then live=$((live + 1)); continue; fi
    rm -f "$(pid_file_of "$n")"
    if grep -q 'myself,master' "$(dir_of "$n")/nodes.conf" 2>/dev/null; then
      down_masters+=("$n")
    else
      down_replicas+=("$n")
    fi
  done
  for n in "${down_replicas[@]}"; do log "starting node $n"; start_node "$n"; done
  for n in "${down_masters[@]}"; do
    ((live == 0)) || wait_for_failover "$n"  # (a cold start: nobody is there to fail it over)
    log "starting node $n (it was a master)"
    start_node "$n"
  done
  created || create_cluster
  wait_cluster_ok
  write_env
  log "running on $HOST:$FIRST_PORT-$(port_of 6); settings in $ENV_FILE (XPBANK_REDIS_URL=redis+cluster://$HOST:$FIRST_PORT,...)"
}

cmd_down() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock 9
  local n pid
  for n in "${NODES[@]}"; do  # all at once: each waits for its own exit
    if pid="$(our_pid "$n")"; then stop_pid "$NAME" "$pid" 10 & fi
  done
  wait
  for n in "${NODES[@]}"; do rm -f "$(pid_file_of "$n")"; done
  if ((PURGE)); then
    rm -rf "${NODES[@]/#/$RUN_DIR/node-}" "$ENV_FILE" "$RUN_DIR/create.log"
    log "stopped; the cluster is forgotten (the next up creates a new one)"
  else
    log "stopped"
  fi
}

cmd_status() {
  local n bad=0
  for n in "${NODES[@]}"; do
    if our_pid "$n" >/dev/null && pong "$n"; then
      echo "$NAME: node $n on $HOST:$(port_of "$n"): $(cli "$n" role 2>/dev/null | head -n1)"
    else
      echo "$NAME: node $n on $HOST:$(port_of "$n"): down"
      bad=1
    fi
  done
  ((bad == 0)) && cluster_ok 1
}

case "$ACTION" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) usage ;;
esac
