#!/usr/bin/env bash
# Disconnect soak on loopback: starts the packaged service, sends N streaming requests (completions,
# chat, TGI generate_stream; plain and assisted) that hang up after the first chunk, CONCURRENCY at a
# time; every 1,000 a GC in the server and a row of RSS, heap used, threads and the running/waiting/
# KV-reserved gauges (docs/bench/soak-disconnect.csv). Fails when the service is not ready at the end
# or a slot or KV reservation leaked. Bounded: N requests, MAX_SECONDS of sending.
#
#   ./mvnw -B -o package -DskipTests && tools/bench/soak-disconnect.sh [n=10000] [concurrency=4] [port=18093] [max_seconds=3600]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10000}
CONCURRENCY=${2:-4}
PORT=${3:-18093}
MAX_SECONDS=${4:-3600}
LOG=/tmp/tandem-soak.$$.log
. tools/bench/serve.sh
start_service
mkdir -p docs/bench
status=0
"$JAVA" tools/bench/SoakDisconnect.java "$PORT" "$pid" "$N" "$CONCURRENCY" docs/bench/soak-disconnect.csv "$MAX_SECONDS" || status=$?
errors=$(grep -c ' ERROR ' "$LOG" || true)
echo "server log: $LOG ($errors ERROR lines)"
exit $status
