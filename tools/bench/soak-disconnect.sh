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
JAVA=$(JAVA_HOME= TANDEM_JAVA_HOME= bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
[ -n "$JAVA" ] || { echo "no JDK >= 25 under /usr/lib/jvm" >&2; exit 1; }
[ -f target/quarkus-app/quarkus-run.jar ] || { echo "build first: ./mvnw -B -o package -DskipTests" >&2; exit 1; }
LOG=/tmp/tandem-soak.$$.log
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
status=0
"$JAVA" tools/bench/SoakDisconnect.java "$PORT" "$pid" "$N" "$CONCURRENCY" docs/bench/soak-disconnect.csv "$MAX_SECONDS" || status=$?
errors=$(grep -c ' ERROR ' "$LOG" || true)
echo "server log: $LOG ($errors ERROR lines)"
exit $status
