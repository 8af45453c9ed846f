#!/usr/bin/env bash
# Overload on loopback: starts the packaged service with MAX_CONCURRENT decoding slots and MAX_QUEUED
# queue places, fires a burst of BURST long completions at once, and reports the status distribution,
# time-to-429 (median, p99), whether admitted requests complete, and readiness during the overload
# (docs/bench/overload-requests.csv, docs/bench/overload-readiness.csv).
#
#   ./mvnw -B -o package -DskipTests && tools/bench/overload.sh [burst=50] [max_tokens=128] [max_queued=4] [max_concurrent=2] [port=18094]
set -euo pipefail
cd "$(dirname "$0")/../.."
BURST=${1:-50}
MAX_TOKENS=${2:-128}
MAX_QUEUED=${3:-4}
MAX_CONCURRENT=${4:-2}
PORT=${5:-18094}
JAVA=$(JAVA_HOME= TANDEM_JAVA_HOME= bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
[ -n "$JAVA" ] || { echo "no JDK >= 25 under /usr/lib/jvm" >&2; exit 1; }
[ -f target/quarkus-app/quarkus-run.jar ] || { echo "build first: ./mvnw -B -o package -DskipTests" >&2; exit 1; }
LOG=/tmp/tandem-overload.$$.log
TANDEM_SERVING_MAX_CONCURRENT=$MAX_CONCURRENT TANDEM_SERVING_MAX_QUEUED=$MAX_QUEUED TANDEM_SERVING_QUEUE_TIMEOUT=60s \
  "$JAVA" -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$PORT" -jar target/quarkus-app/quarkus-run.jar >"$LOG" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 600); do  # up to 120 s to ready
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/q/health/ready" && break
  kill -0 "$pid" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.2
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/q/health/ready" || { echo "not ready after 120 s; log: $LOG" >&2; exit 1; }
mkdir -p docs/bench
echo "max_concurrent=$MAX_CONCURRENT max_queued=$MAX_QUEUED queue_timeout=60s"
"$JAVA" tools/bench/Overload.java "$PORT" "$BURST" "$MAX_TOKENS" docs/bench/overload-requests.csv docs/bench/overload-readiness.csv
