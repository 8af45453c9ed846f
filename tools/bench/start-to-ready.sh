#!/usr/bin/env bash
# Start-to-ready time of the packaged service: from launching the JVM to the first 200 from
# /q/health/ready (models loaded). Median of N launches. Also the service's resident memory
# (VmRSS, /proc/PID/status) when ready and after one greedy 64-token completion.
#
#   ./mvnw package -DskipTests && tools/bench/start-to-ready.sh [model-dir] [runs=5] [port=18080]
#
# ENGINES="onnxruntime openvino" (default: onnxruntime) alternates the target's engine launch by
# launch (TANDEM_TARGET_ENGINE) and reports each separately; openvino needs OPENVINO_HOME.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-models/kjv-draft}
RUNS=${2:-5}
PORT=${3:-18080}
read -r -a engines <<<"${ENGINES:-onnxruntime}"
JAVA=$(JAVA_HOME= TANDEM_JAVA_HOME= bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
[ -n "$JAVA" ] || { echo "no JDK >= 25 under /usr/lib/jvm" >&2; exit 1; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
median() { local s=($(printf '%s\n' "$@" | sort -n)); echo "${s[$(( $# / 2 ))]}"; }
declare -A times ready_rss done_rss
for i in $(seq "$RUNS"); do
  for engine in "${engines[@]}"; do
    start=$(date +%s%N)
    TANDEM_TARGET_ENGINE="$engine" TANDEM_TARGET_MODEL_DIR="$MODEL" "$JAVA" -Dquarkus.http.port="$PORT" -jar target/quarkus-app/quarkus-run.jar >/tmp/tandem-start.$$.log 2>&1 &
    pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$PORT/q/health/ready"; do
      kill -0 "$pid" 2>/dev/null || { cat /tmp/tandem-start.$$.log >&2; exit 1; }
      sleep 0.02
    done
    end=$(date +%s%N)
    times[$engine]+="$(( (end - start) / 1000000 )) "
    ready_rss[$engine]+="$(rss "$pid") "
    curl -sf -o /dev/null -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/v1/completions" \
      -d '{"prompt":"In the beginning","max_tokens":64,"temperature":0}' || { echo "completion failed ($engine)" >&2; cat /tmp/tandem-start.$$.log >&2; }
    done_rss[$engine]+="$(rss "$pid") "
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
for engine in "${engines[@]}"; do
  echo "model=$MODEL engine=$engine runs=$RUNS start-to-ready ms: ${times[$engine]}| median $(median ${times[$engine]})"
  echo "  VmRSS kB when ready: ${ready_rss[$engine]}| median $(median ${ready_rss[$engine]}); after a 64-token completion: ${done_rss[$engine]}| median $(median ${done_rss[$engine]})"
done
rm -f /tmp/tandem-start.$$.log
