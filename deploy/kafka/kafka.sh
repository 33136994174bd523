#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) for xpbank dev/tests.
# No Docker needed: the broker jars come from Maven Central (deploy/kafka/pom.xml).
#
#   bash deploy/kafka/kafka.sh up            start (idempotent); reuses existing data
#   bash deploy/kafka/kafka.sh down          stop our broker; keeps data (topics, offsets)
#   bash deploy/kafka/kafka.sh down --purge  stop and delete the data: next `up` is a clean broker
#   bash deploy/kafka/kafka.sh status        exit 0 if running and reachable, 1 otherwise
#
# Bootstrap: 127.0.0.1:${XPBANK_KAFKA_PORT:-9092}  (controller on ${XPBANK_KAFKA_CONTROLLER_PORT:-9093})
#
# --secure (with up, down [--purge], status): a second, secured broker from the same jars in
# its own run dir <root>/kafka-secure: SASL_SSL with SCRAM-SHA-512 users and ACLs on
# 127.0.0.1:${XPBANK_KAFKA_SECURE_PORT:-9094} (controller on ${XPBANK_KAFKA_SECURE_CONTROLLER_PORT:-9095}); `up --secure` writes
# the xpbank client settings to <root>/kafka/secure.env. See deploy/kafka/secure.sh.
#
# Environment:
#   XPBANK_CACHE_DIR     jar cache root          (default ~/.cache/xpbank; jars in kafka-<version>/lib)
#   XPBANK_RUN_DIR       runtime root            (default <repo>/.run; this script uses <root>/kafka:
#                                                 data/, kafka.pid, kafka.log, server.properties, log4j2*.properties;
#                                                 with --secure <root>/kafka-secure: the same, and tls/, secrets/)
#   XPBANK_KAFKA_PORT, XPBANK_KAFKA_CONTROLLER_PORT, XPBANK_KAFKA_START_TIMEOUT (seconds, default 90)
#   XPBANK_KAFKA_SECURE_PORT, XPBANK_KAFKA_SECURE_CONTROLLER_PORT  (--secure; default 9094, 9095)
#   XPBANK_KAFKA_HEAP    JVM heap flags          (default "-Xmx512m -Xms256m")
#   XPBANK_KAFKA_RETENTION_MS, XPBANK_KAFKA_RETENTION_CHECK_MS
#                        the broker's default time retention (default 1 hour) and how often it
#                        deletes by it (default 5 s). Short on purpose: every topic xpbank creates
#                        carries its own retention (inputs are kept for ever), so anything that
#                        silently relied on the broker default loses its records at once, not
#                        a week later.
#
# Needs java >= 17 on PATH, and mvn for the first (download) run only.
# Kafka CLI tools from the same jars, e.g.:
#   java -cp "$HOME/.cache/xpbank/kafka-4.1.1/lib/*" org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/pom.xml"
# shellcheck source=deploy/lib.sh
source "$SCRIPT_DIR/../lib.sh"
# shellcheck source=deploy/kafka/jars.sh
source "$SCRIPT_DIR/jars.sh"  # require_java, ensure_jars

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)"
[[ -n "$KAFKA_VERSION" ]] || { echo "kafka.sh: cannot read <kafka.version> from $POM" >&2; exit 1; }

usage() {
  echo "usage: $0 up [--secure] | down [--secure] [--purge] | status [--secure]" >&2
  exit 2
}
ACTION="${1:-}"
[[ $# -gt 0 ]] && shift
SECURE=0
PURGE=0
for arg in "$@"; do
  case "$arg" in
    --secure) SECURE=1 ;;
    --purge) [[ "$ACTION" == down ]] || usage; PURGE=1 ;;
    *) usage ;;
  esac
done

NAME=kafka        # in messages; kafka-secure for --secure
FLAGS=""          # " --secure" for --secure
HOST=127.0.0.1
PORT="${XPBANK_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${XPBANK_KAFKA_CONTROLLER_PORT:-9093}"
START_TIMEOUT="${XPBANK_KAFKA_START_TIMEOUT:-90}"
HEAP_OPTS="${XPBANK_KAFKA_HEAP:--Xmx512m -Xms256m}"
RETENTION_MS="${XPBANK_KAFKA_RETENTION_MS:-3600000}"
RETENTION_CHECK_MS="${XPBANK_KAFKA_RETENTION_CHECK_MS:-5000}"

CACHE_DIR="${XPBANK_CACHE_DIR:-$HOME/.cache/xpbank}/kafka-$KAFKA_VERSION"
LIB_DIR="$CACHE_DIR/lib"
RUN_ROOT="${XPBANK_RUN_DIR:-$REPO_ROOT/.run}"
RUN_DIR="$RUN_ROOT/kafka"
CLIENT_ARGS=()    # more arguments of the CLI tools that talk to the broker
FORMAT_ARGS=()    # more arguments of kafka-storage format
STORAGE_TAG=""    # part of the data dir's marker besides the ports: a change reformats
PORT_VARIABLES="XPBANK_KAFKA_PORT / XPBANK_KAFKA_CONTROLLER_PORT"
if ((SECURE)); then
  # shellcheck source=deploy/kafka/secure.sh
  source "$SCRIPT_DIR/secure.sh"  # sets NAME, PORT, CONTROLLER_PORT, RUN_DIR; defines secure_*
fi
DATA_DIR="$RUN_DIR/data"
PID_FILE="$RUN_DIR/kafka.pid"
LOG_FILE="$RUN_DIR/kafka.log"
CONFIG="$RUN_DIR/server.properties"
LOG4J_BROKER="$RUN_DIR/log4j2.properties"
LOG4J_TOOLS="$RUN_DIR/log4j2-tools.properties"

# Small, fast-starting JVM for the CLI tools used in the readiness check.
TOOL_JAVA_OPTS=(-Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "-Dlog4j2.configurationFile=$LOG4J_TOOLS")

log() { echo "$NAME: $*"; }
die() { echo "$NAME: ERROR: $*" >&2; exit 1; }

# True if something accepts TCP connections on $HOST:$1.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

# Prints the pid from the pid file if that process is alive and is our broker.
our_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: the process must be a JVM running kafka.Kafka with our config.
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmdline" == *"kafka.Kafka $CONFIG"* ]] || return 1
  echo "$pid"
}

# The plain broker's listeners (secure.sh has the secured broker's).
listener_configs() {
  cat <<EOF
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=$HOST:$CONTROLLER_PORT
EOF
}

write_configs() {
  {
    echo "# Generated by deploy/kafka/kafka.sh -- edits are overwritten on every 'up'."
    if ((SECURE)); then secure_listener_configs; else listener_configs; fi
    cat <<EOF
process.roles=broker,controller
node.id=1
log.dirs=$DATA_DIR

# Single node: every internal topic has replication factor 1.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1

# Test friendliness.
group.initial.rebalance.delay.ms=0
# topics are created explicitly (xpbank topics create, the worker, Faust for its changelogs):
# an auto-created topic would silently get the wrong partition count and cleanup policy
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
# Fewer internal partitions => faster first consumer-group / transaction use.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1

# Small footprint (2-core dev boxes / CI).
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
# Short default retention, checked often (see XPBANK_KAFKA_RETENTION_MS above).
log.retention.ms=$RETENTION_MS
log.retention.check.interval.ms=$RETENTION_CHECK_MS
log.cleaner.dedupe.buffer.size=16777216
EOF
  } >"$CONFIG"

  # Broker logging: INFO to stdout (-> kafka.log), noisy internals at WARN.
  cat >"$LOG4J_BROKER" <<'EOF'
# Generated by deploy/kafka/kafka.sh
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
logger.metadata.name = org.apache.kafka.image.loader
logger.metadata.level = WARN
EOF

  # CLI tools: only warnings, to stderr.
  cat >"$LOG4J_TOOLS" <<'EOF'
# Generated by deploy/kafka/kafka.sh
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

# Format the KRaft storage if it is missing, or if it was formatted for other listener ports.
ensure_storage() {
  local marker="$DATA_DIR/.xpbank-listeners" want="$HOST:$PORT $HOST:$CONTROLLER_PORT$STORAGE_TAG"
  if [[ -f "$DATA_DIR/meta.properties" && "$(cat "$marker" 2>/dev/null)" == "$want" ]]; then
    return 0
  fi
  if [[ -d "$DATA_DIR" ]]; then
    log "data dir missing/unformatted or formatted for other ports: recreating $DATA_DIR"
  fi
  rm -rf "$DATA_DIR"
  mkdir -p "$DATA_DIR"
  local cluster_id
  cluster_id="$(java "${TOOL_JAVA_OPTS[@]}" -cp "$LIB_DIR/*" kafka.tools.StorageTool random-uuid)"
  java "${TOOL_JAVA_OPTS[@]}" -cp "$LIB_DIR/*" kafka.tools.StorageTool format \
    --standalone --cluster-id "$cluster_id" --config "$CONFIG" "${FORMAT_ARGS[@]}" >/dev/null \
    || die "kafka-storage format failed"
  echo "$want" >"$marker"
  log "formatted fresh KRaft storage (cluster id $cluster_id)"
}

# The broker answers a metadata request (lists topics).
broker_ready() {
  timeout 30 java "${TOOL_JAVA_OPTS[@]}" -cp "$LIB_DIR/*" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$HOST:$PORT" "${CLIENT_ARGS[@]}" --list >/dev/null 2>&1
}

wait_ready() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
  printf '%s: waiting for broker on %s:%s ' "$NAME" "$HOST" "$PORT"
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo
      echo "---- last 40 lines of $LOG_FILE ----" >&2
      tail -n 40 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      die "broker process $pid exited during startup"
    fi
    if port_open "$PORT" && broker_ready; then
      echo " ready"
      return 0
    fi
    printf '.'
    sleep 1
  done
  echo
  echo "---- last 40 lines of $LOG_FILE ----" >&2
  tail -n 40 "$LOG_FILE" >&2 || true
  die "broker not ready after ${START_TIMEOUT}s (pid $pid still running; stop it with: bash $0 down$FLAGS)"
}

cmd_up() {
  mkdir -p "$RUN_DIR"
  # Serialise concurrent 'up'/'down' calls (e.g. make -j). The broker must not inherit fd 9.
  exec 9>"$RUN_DIR/.lock"
  flock 9

  local pid
  if pid="$(our_pid)"; then
    if port_open "$PORT"; then
      echo "$NAME already running (pid $pid) on $HOST:$PORT"
    else
      log "pid $pid is alive but $HOST:$PORT is not accepting connections yet"
      require_java
      wait_ready "$pid"
    fi
    if ((SECURE)); then secure_after_ready; fi
    return 0
  fi
  rm -f "$PID_FILE"

  # (A secured broker we did not start is of no use: we would not know its users.)
  if ((!SECURE)) && port_open "$PORT"; then
    require_java
    ensure_jars
    if broker_ready; then  # e.g. started from another checkout: use it, but never stop it
      echo "kafka: a broker not started by this script already answers on $HOST:$PORT; using it"
      return 0
    fi
  fi
  local p
  for p in "$PORT" "$CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port $HOST:$p is already in use by a process not started by this script." \
          "Stop it, or use other ports via $PORT_VARIABLES."
    fi
  done

  require_java
  ensure_jars
  if ((SECURE)); then secure_prepare; fi
  write_configs
  ensure_storage

  log "starting Apache Kafka $KAFKA_VERSION (log: $LOG_FILE)"
  # shellcheck disable=SC2086  # HEAP_OPTS is intentionally word-split
  setsid nohup java $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$LOG4J_BROKER" \
    -cp "$LIB_DIR/*" kafka.Kafka "$CONFIG" \
    >"$LOG_FILE" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  wait_ready "$pid"
  echo "$NAME running (pid $pid); bootstrap servers: $HOST:$PORT"
  if ((SECURE)); then secure_after_ready; fi
}

cmd_down() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock 9

  local pid
  if pid="$(our_pid)"; then
    stop_pid "$NAME" "$pid" 20
    rm -f "$PID_FILE"
    echo "$NAME stopped"
  else
    rm -f "$PID_FILE"
    echo "$NAME not running"
  fi
  if ((PURGE)); then
    rm -rf "$DATA_DIR"
    log "data purged ($DATA_DIR)"
  fi
}

cmd_status() {
  local pid
  if pid="$(our_pid)"; then
    if port_open "$PORT"; then
      echo "$NAME running (pid $pid) on $HOST:$PORT"
      return 0
    fi
    log "process $pid alive but $HOST:$PORT not accepting connections (starting or unhealthy)"
    return 1
  fi
  echo "$NAME not running"
  return 1
}

case "$ACTION" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) usage ;;
esac
