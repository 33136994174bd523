#!/usr/bin/env bash
# `make run`: Kafka and Redis (started here unless something already answers on their
# ports, or XPBANK_BROKER / XPBANK_REDIS_URL point elsewhere), the topics, a worker and the
# gateway, the page's URL, the demo classroom once through the gateway, then a slow
# trickle of learners, until Ctrl-C. Ctrl-C stops what this script started, and only that.
# Arguments go to `xpbank demo` (make run DEMO_ARGS="--learners 10"). Tokens: the API's
# in $RUN/api-token, the gateway's in $RUN/gateway-token (made once, random), unless set.
# `make run SINKS=1` also starts both write-back sinks (docs/write-back.md): against
# XPBANK_ONEROSTER_URL and XPBANK_CALIPER_SINK_URL when set, else against a local stand-in
# server on XPBANK_SINK_STORE_PORT (6073; `python -m tests.sink_store`, kept in memory).
set -euo pipefail
cd "$(dirname "$0")/.."
XPBANK=.venv/bin/xpbank
RUN="${XPBANK_RUN_DIR:-.run}"
mkdir -p "$RUN" && RUN="$(cd "$RUN" && pwd)"
export XPBANK_DATA_DIR="${XPBANK_DATA_DIR:-$RUN/worker-data}"
kafka_port="${XPBANK_KAFKA_PORT:-9092}"
redis_port="${XPBANK_REDIS_PORT:-6379}"
started=()  # the services this script started: stopped again on the way out
children=()  # the worker and the gateway (and with SINKS=1 the sinks and their stand-in server)

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

stop_everything() {
  trap - INT TERM
  local pid
  for pid in "${children[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${children[@]}"; do  # a worker commits and closes within its grace period
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  ((${#children[@]})) && echo "worker and gateway stopped$([[ "${SINKS:-0}" == 1 ]] && echo ', sinks too')"
  local service
  for service in "${started[@]}"; do bash "deploy/$service/$service.sh" down >/dev/null && echo "$service stopped"; done
  return 0
}
trap stop_everything EXIT
trap 'exit 130' INT TERM

if [[ -z "${XPBANK_BROKER:-}" ]]; then
  export XPBANK_BROKER="kafka://127.0.0.1:$kafka_port"
  if answers "$kafka_port"; then echo "kafka: using the broker already on 127.0.0.1:$kafka_port (left running)"
  else bash deploy/kafka/kafka.sh up && started+=(kafka); fi
fi
if [[ -z "${XPBANK_REDIS_URL:-}${XPBANK_REDIS_URL_FILE:-}" ]]; then
  export XPBANK_REDIS_URL="redis://127.0.0.1:$redis_port/0"
  if answers "$redis_port"; then echo "redis: using the Redis already on 127.0.0.1:$redis_port (left running)"
  else bash deploy/redis/redis.sh up && started+=(redis); fi
fi

# The API needs a bearer token: make one for this machine (kept in $RUN/api-token) unless given.
if [[ -z "${XPBANK_API_TOKENS:-}${XPBANK_API_TOKENS_FILE:-}" ]]; then
  [[ -s "$RUN/api-token" ]] || (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$RUN/api-token")
  export XPBANK_API_TOKENS_FILE="$RUN/api-token"
fi
token="$(.venv/bin/python -c 'from xpbank.config import Settings; print(Settings.from_env().api_tokens.scopes[0][0].reveal())')"
auth="Authorization: Bearer $token"
$XPBANK topics create
echo "starting the worker (log: $RUN/worker.log)"
$XPBANK worker > "$RUN/worker.log" 2>&1 &
children+=($!)
if [[ -z "${XPBANK_GATEWAY_TOKENS:-}${XPBANK_GATEWAY_TOKENS_FILE:-}" ]]; then
  [[ -s "$RUN/gateway-token" ]] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RUN/gateway-token")
  XPBANK_GATEWAY_TOKENS="$(cat "$RUN/gateway-token")"
  export XPBANK_GATEWAY_TOKENS
fi
echo "starting the gateway (log: $RUN/gateway.log)"
$XPBANK gateway > "$RUN/gateway.log" 2>&1 &
children+=($!)
if [[ "${SINKS:-0}" == 1 ]]; then
  if [[ -z "${XPBANK_ONEROSTER_URL:-}${XPBANK_CALIPER_SINK_URL:-}" ]]; then
    [[ -s "$RUN/sink-token" ]] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RUN/sink-token")
    store="http://127.0.0.1:${XPBANK_SINK_STORE_PORT:-6073}"
    echo "starting a stand-in gradebook and analytics server on $store (log: $RUN/sink-store.log)"
    .venv/bin/python -m tests.sink_store --port "${XPBANK_SINK_STORE_PORT:-6073}" --token "$(cat "$RUN/sink-token")" \
      > "$RUN/sink-store.log" 2>&1 &
    children+=($!)
    export XPBANK_ONEROSTER_URL="$store" XPBANK_CALIPER_SINK_URL="$store/caliper/event"
    export XPBANK_ONEROSTER_TOKEN_FILE="$RUN/sink-token" XPBANK_CALIPER_SINK_TOKEN_FILE="$RUN/sink-token"
  fi
  for sink in oneroster caliper; do
    echo "starting xpbank sink $sink (log: $RUN/sink-$sink.log)"
    $XPBANK sink "$sink" > "$RUN/sink-$sink.log" 2>&1 &
    children+=($!)
  done
fi
port="${XPBANK_WEB_PORT:-6066}"
api="http://127.0.0.1:$port"
for _ in $(seq 1 120); do  # ready: tables recovered and the curriculum loaded
  curl -sf "$api/healthz" >/dev/null 2>&1 && break
  kill -0 "${children[0]}" 2>/dev/null || { echo "the worker exited:"; tail -20 "$RUN/worker.log"; exit 1; }
  sleep 1
done
gw="http://127.0.0.1:${XPBANK_GATEWAY_PORT:-6070}"
for _ in $(seq 1 30); do  # ready: the broker answers
  curl -sf "$gw/healthz" >/dev/null 2>&1 && break
  kill -0 "${children[1]}" 2>/dev/null || { echo "the gateway exited:"; tail -20 "$RUN/gateway.log"; exit 1; }
  sleep 1
done
quoted="$(.venv/bin/python -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$token")"
echo
echo "page: $api/ui/?token=$quoted   (in a browser: the live overview and learners, docs/ui.md)"
echo "gateway: $gw   (POST /caliper/v1p2 with Authorization: Bearer \$(cat $RUN/gateway-token); see README)"
echo "API: $api   (GET /users/{user}/xp, /users/{user}/exercises/{exercise}/attempt, .../explain, /healthz, /metrics)"
echo "try: curl -s -H \"$auth\" $api/users/learner-000/xp"
if [[ "${SINKS:-0}" == 1 ]]; then
  echo "sinks: curl -s 127.0.0.1:${XPBANK_ONEROSTER_SINK_PORT:-6071}/healthz (oneroster), 127.0.0.1:${XPBANK_CALIPER_SINK_PORT:-6072}/healthz (caliper)"
fi
echo "everything stays up until Ctrl-C, which stops what this started"
echo
$XPBANK demo --via-gateway "$gw" --trickle "$@"
