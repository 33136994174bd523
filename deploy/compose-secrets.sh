#!/usr/bin/env bash
# Makes the secrets deploy/docker-compose.yml mounts (deploy/secrets/, never committed),
# each a random value, unless it exists: run once before `docker compose up`.
#   api-tokens        the HTTP API's tokens: {"<token>": {"name": ..., "scopes": [...]}}, metrics-token's too
#   metrics-token     Prometheus's token (operations scope only): deploy/prometheus/prometheus.yml
#   gateway-tokens    the gateway's tokens: {"<token>": {"name": ..., "may": [...]}}
#   redis-password    Redis's requirepass; redis-url: the URL the xpbank services use
#   oneroster-token, caliper-token   the write-back servers' bearer tokens (profile sinks):
#                     made as placeholders; write the tokens your servers issued over them
# The directory is private (700); its files are readable by the containers' user.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir" && chmod 700 "$dir"
token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
make_secret() {  # NAME CONTENT
  [[ -s "$dir/$1" ]] && return 0
  printf '%s\n' "$2" > "$dir/$1" && chmod 644 "$dir/$1"
  echo "compose-secrets: made $dir/$1"
}
make_secret metrics-token "$(token)"
make_secret api-tokens "{\"$(token)\": {\"name\": \"operator\", \"scopes\": [\"learners\", \"operations\"]}, \"$(tr -d '\n' < "$dir/metrics-token")\": {\"name\": \"prometheus\", \"scopes\": [\"operations\"]}}"
make_secret gateway-tokens "{\"$(token)\": {\"name\": \"sensors\", \"may\": [\"caliper\", \"submissions\", \"masteries\", \"curriculum\"]}}"
password="$(token)"
make_secret redis-password "$password"
make_secret redis-url "redis://:$(cat "$dir/redis-password")@redis:6379/0"
make_secret oneroster-token "replace-with-the-gradebook-token"
make_secret caliper-token "replace-with-the-analytics-token"
