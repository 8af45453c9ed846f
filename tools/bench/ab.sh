#!/usr/bin/env bash
# A mixed run through the built-in A/B experiment: starts the packaged service with the
# experiment on (half of the users assisted), sends streamed requests from 40 users, and prints
# the client-side per-arm measurement beside the server's /v1/experiments/assisted and /q/metrics.
#
#   ./mvnw package -DskipTests && tools/bench/ab.sh [requests=200] [max_tokens=96] [key=value env...]
set -euo pipefail
cd "$(dirname "$0")/../.."
JAVA=$(bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
PORT=18082
REQUESTS=${1:-200}
TOKENS=${2:-96}
TANDEM_EXPERIMENT_ENABLED=true TANDEM_EXPERIMENT_ASSISTED_SHARE=0.5 \
  "$JAVA" -Dquarkus.http.port=$PORT -jar target/quarkus-app/quarkus-run.jar > /tmp/tandem-ab.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/q/health/ready"; do sleep 0.1; done
"$JAVA" tools/bench/AbClient.java $PORT "$REQUESTS" 40 "$TOKENS" tools/bench/prompts/heldout.txt
