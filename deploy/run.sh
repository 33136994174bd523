#!/usr/bin/env bash
# `make run`: services up, topics created, a worker and the gateway in the background, and
# the live demo sending through the gateway. The gateway's token is .run/gateway-token
# (made once, random) unless XPBANK_GATEWAY_TOKENS is set. `make run SINKS=1` also starts
# both write-back sinks (docs/write-back.md): against XPBANK_ONEROSTER_URL and
# XPBANK_CALIPER_SINK_URL when set, else against a local stand-in server on
# XPBANK_SINK_STORE_PORT (6073; `python -m tests.sink_store`, results and events in memory).
set -euo pipefail
cd "$(dirname "$0")/.."
XPBANK=.venv/bin/xpbank
mkdir -p .run
export XPBANK_DATA_DIR="${XPBANK_DATA_DIR:-.run/worker-data}"
# The API needs a bearer token: make one for this machine (kept in .run/api-token) unless given.
if [[ -z "${XPBANK_API_TOKENS:-}${XPBANK_API_TOKENS_FILE:-}" ]]; then
  [[ -s .run/api-token ]] || (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))' > .run/api-token)
  export XPBANK_API_TOKENS_FILE="$PWD/.run/api-token"
fi
token="$(.venv/bin/python -c 'from xpbank.config import Settings; print(Settings.from_env().api_tokens.scopes[0][0].reveal())')"
auth="Authorization: Bearer $token"
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
started="$worker $gateway"
if [[ "${SINKS:-0}" == 1 ]]; then
  if [[ -z "${XPBANK_ONEROSTER_URL:-}${XPBANK_CALIPER_SINK_URL:-}" ]]; then
    [[ -s .run/sink-token ]] || (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > .run/sink-token)
    store="http://127.0.0.1:${XPBANK_SINK_STORE_PORT:-6073}"
    echo "starting a stand-in gradebook and analytics server on $store (log: .run/sink-store.log)"
    .venv/bin/python -m tests.sink_store --port "${XPBANK_SINK_STORE_PORT:-6073}" --token "$(cat .run/sink-token)" \
      > .run/sink-store.log 2>&1 &
    started="$started $!"
    export XPBANK_ONEROSTER_URL="$store" XPBANK_CALIPER_SINK_URL="$store/caliper/event"
    export XPBANK_ONEROSTER_TOKEN_FILE="$PWD/.run/sink-token" XPBANK_CALIPER_SINK_TOKEN_FILE="$PWD/.run/sink-token"
  fi
  for sink in oneroster caliper; do
    echo "starting xpbank sink $sink (log: .run/sink-$sink.log)"
    $XPBANK sink $sink > ".run/sink-$sink.log" 2>&1 &
    started="$started $!"
  done
fi
trap 'kill $started 2>/dev/null; wait $started 2>/dev/null; echo "worker, gateway (and sinks) stopped"' EXIT
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
quoted="$(.venv/bin/python -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$token")"
echo "page: $api/ui/?token=$quoted   (in a browser: the live overview and learners, docs/ui.md)"
echo "token (in .run/api-token unless you set XPBANK_API_TOKENS): $token"
echo "try: curl -s -H \"$auth\" $api/users/learner-000/xp"
[[ "${SINKS:-0}" == 1 ]] && echo "sinks: curl -s 127.0.0.1:6071/healthz (oneroster), 127.0.0.1:6072/healthz (caliper)"
echo "     curl -s -H \"$auth\" $api/users/learner-000/exercises/exercise-1-1/attempt   (and .../explain)"
echo
$XPBANK demo --via-gateway "$gw" "$@"
echo
echo "API still up until this script exits: curl -s -H \"$auth\" $api/users/learner-000/xp"
curl -s -H "$auth" "$api/users/learner-000/xp" && echo
