#!/usr/bin/env bash
# Start-to-ready time of the packaged service: from launching the JVM to the first 200 from
# /q/health/ready (models loaded). Median of N launches.
#
#   ./mvnw package -DskipTests && tools/bench/start-to-ready.sh [model-dir] [runs=5] [port=18080]
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-models/kjv-draft}
RUNS=${2:-5}
PORT=${3:-18080}
JAVA=$(JAVA_HOME= TANDEM_JAVA_HOME= bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
[ -n "$JAVA" ] || { echo "no JDK >= 25 under /usr/lib/jvm" >&2; exit 1; }
times=()
for i in $(seq "$RUNS"); do
  start=$(date +%s%N)
  TANDEM_TARGET_MODEL_DIR="$MODEL" "$JAVA" -Dquarkus.http.port="$PORT" -jar target/quarkus-app/quarkus-run.jar >/tmp/tandem-start.$$.log 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$PORT/q/health/ready"; do
    kill -0 "$pid" 2>/dev/null || { cat /tmp/tandem-start.$$.log >&2; exit 1; }
    sleep 0.02
  done
  end=$(date +%s%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  times+=($(( (end - start) / 1000000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "model=$MODEL runs=$RUNS start-to-ready ms: ${times[*]} | median ${sorted[$((RUNS / 2))]}"
rm -f /tmp/tandem-start.$$.log
