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
LOG=/tmp/tandem-overload.$$.log
. tools/bench/serve.sh
TANDEM_SERVING_MAX_CONCURRENT=$MAX_CONCURRENT TANDEM_SERVING_MAX_QUEUED=$MAX_QUEUED TANDEM_SERVING_QUEUE_TIMEOUT=60s start_service
mkdir -p docs/bench
echo "max_concurrent=$MAX_CONCURRENT max_queued=$MAX_QUEUED queue_timeout=60s"
"$JAVA" tools/bench/Overload.java "$PORT" "$BURST" "$MAX_TOKENS" docs/bench/overload-requests.csv docs/bench/overload-readiness.csv
