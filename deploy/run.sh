#!/usr/bin/env bash
# `make run`: services up, topics created, a worker in the background, and the live demo.
set -euo pipefail
cd "$(dirname "$0")/.."
XPBANK=.venv/bin/xpbank
mkdir -p .run
export XPBANK_DATA_DIR="${XPBANK_DATA_DIR:-.run/worker-data}"
$XPBANK topics create
echo "starting the worker (log: .run/worker.log)"
$XPBANK worker > .run/worker.log 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null; echo "worker stopped"' EXIT
for _ in $(seq 1 60); do
  grep -q "worker ready" .run/worker.log 2>/dev/null && break
  kill -0 $worker 2>/dev/null || { echo "the worker exited:"; tail -20 .run/worker.log; exit 1; }
  sleep 1
done
$XPBANK demo "$@"
