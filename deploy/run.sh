#!/usr/bin/env bash
# `make run`: services up, topics created, a worker and the gateway in the background, and
# the live demo sending through the gateway. The gateway's token is .run/gateway-token
# (made once, random) unless XPBANK_GATEWAY_TOKENS is set.
set -euo pipefail
cd "$(dirname "$0")/.."
XPBANK=.venv/bin/xpbank
mkdir -p .run
export XPBANK_DATA_DIR="${XPBANK_DATA_DIR:-.run/worker-data}"
$XPBANK topics create
echo "starting the worker (log: .run/worker.log)"
$XPBANK worker > .run/worker.log 2>&1 &
worker=$!
if [ -z "${XPBANK_GATEWAY_TOKENS:-}" ]; then
  [ -s .run/gateway-token ] || (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > .run/gateway-token)
  XPBANK_GATEWAY_TOKENS="$(cat .run/gateway-token)"
  export XPBANK_GATEWAY_TOKENS
fi
echo "starting the gateway (log: .run/gateway.log)"
$XPBANK gateway > .run/gateway.log 2>&1 &
gateway=$!
trap 'kill $worker $gateway 2>/dev/null; wait $worker $gateway 2>/dev/null; echo "worker and gateway stopped"' EXIT
for _ in $(seq 1 60); do
  grep -q "worker ready" .run/worker.log 2>/dev/null && break
  kill -0 $worker 2>/dev/null || { echo "the worker exited:"; tail -20 .run/worker.log; exit 1; }
  sleep 1
done
port="${XPBANK_WEB_PORT:-6066}"
api="http://127.0.0.1:$port"
for _ in $(seq 1 60); do  # ready: tables recovered and the curriculum loaded
  curl -sf "$api/healthz" >/dev/null 2>&1 && break
  sleep 1
done
gw="http://127.0.0.1:${XPBANK_GATEWAY_PORT:-6070}"
for _ in $(seq 1 30); do  # ready: the broker answers
  curl -sf "$gw/healthz" >/dev/null 2>&1 && break
  kill -0 $gateway 2>/dev/null || { echo "the gateway exited:"; tail -20 .run/gateway.log; exit 1; }
  sleep 1
done
echo
echo "gateway: $gw   (POST /caliper/v1p2 with Authorization: Bearer \$(cat .run/gateway-token); see README)"
echo "API: $api   (GET /users/{user}/xp, /users/{user}/exercises/{exercise}/attempt, .../explain, /healthz, /metrics)"
echo "try: curl -s $api/users/learner-000/xp"
echo "     curl -s $api/users/learner-000/exercises/exercise-1-1/attempt   (and .../explain)"
echo
$XPBANK demo --via-gateway "$gw" "$@"
echo
echo "API still up until this script exits: curl -s $api/users/learner-000/xp"
curl -s "$api/users/learner-000/xp" && echo
