#!/usr/bin/env bash
# Prints a Caliper 1.2 envelope with one TimeSpentEvent (Timeback's shape), timed now:
#   examples/caliper-envelope.sh LEARNER RESOURCE SECONDS | curl ... -d @-
set -euo pipefail
learner=${1:-learner-000} resource=${2:-video-1-1} seconds=${3:-30}
now=$(date -u +%FT%TZ)
id=$(cat /proc/sys/kernel/random/uuid)
printf '{"sensor":"https://app.example.org","sendTime":"%s","dataVersion":"http://purl.imsglobal.org/ctx/caliper/v1p2",' "$now"
printf '"data":[{"id":"urn:uuid:%s","type":"TimeSpentEvent","action":"SpentTime",' "$id"
printf '"actor":{"id":"https://roster.example.org/users/%s"},"object":{"activity":{"id":"%s"}},' "$learner" "$resource"
printf '"eventTime":"%s","generated":{"items":[{"type":"active","value":%s}]}}]}\n' "$now" "$seconds"
