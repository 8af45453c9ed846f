#!/usr/bin/env bash
# Bounded load test on loopback: starts the packaged service (2 decoding slots, 8 queue places),
# sends CLIENTS x REQUESTS completions from concurrent clients, three rounds, then stops it.
#
#   ./mvnw package -DskipTests && tools/bench/load.sh [clients=32] [requests=10] [max_tokens=64]
set -euo pipefail
cd "$(dirname "$0")/../.."
JAVA=$(bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
PORT=18081
TANDEM_SERVING_MAX_CONCURRENT=2 TANDEM_SERVING_MAX_QUEUED=8 TANDEM_SERVING_QUEUE_TIMEOUT=5s \
  "$JAVA" -Dquarkus.http.port=$PORT -jar target/quarkus-app/quarkus-run.jar > /tmp/tandem-load.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/q/health/ready"; do sleep 0.1; done
"$JAVA" tools/bench/LoadTest.java $PORT $pid "${1:-32}" "${2:-10}" "${3:-64}"
