#!/usr/bin/env bash
# The reference engine's offload (layered) mode against its normal mode: greedy decoding of N
# tokens (OffloadBenchmark), one mode per JVM, each under /usr/bin/time -v with the same small
# fixed heap (chosen so the normal mode still fits), then the offload mode alone with the smallest
# heap of HEAPS_OFFLOAD it runs in. Prints per mode: ms/token, load time, heap after load, peak
# heap after GC, VmHWM (from inside the JVM) and /usr/bin/time's "Maximum resident set size".
#
#   ./mvnw package -DskipTests && tools/bench/offload.sh [MODEL_DIR=models/kjv-target] [steps=64] [runs=3]
#   (XMX=80m HEAPS_OFFLOAD="8m 12m 16m 24m" THREADS=2 override the defaults; CP=target/classes:... to
#    run without packaging, e.g. CP='target/classes:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*')
set -euo pipefail
cd "$(dirname "$0")/../.."
JAVA=$(bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
CP=${CP:-'target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*'}
MODEL=${1:-models/kjv-target}
STEPS=${2:-64}
RUNS=${3:-3}
XMX=${XMX:-80m}
THREADS=${THREADS:-2}
HEAPS_OFFLOAD=${HEAPS_OFFLOAD:-"8m 12m 16m 24m"}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "no /usr/bin/time: only the JVM's own VmHWM is printed" >&2; TIME=""; }

run() {  # mode xmx
  local log
  log=$(mktemp)
  echo "== $1, -Xmx$2"
  if ${TIME:+$TIME -v -o "$log"} "$JAVA" "-Xmx$2" -cp "$CP" dev.tandem.tools.OffloadBenchmark "$MODEL" "$1" "$STEPS" \
      "$THREADS" "$RUNS" 2>&1 | grep -vE "INFO|WARN|^\s*at "; then
    [ -n "$TIME" ] && grep -E "Maximum resident set size|Elapsed \(wall" "$log" | sed 's/^\s*/  time -v: /'
    rm -f "$log"; return 0
  fi
  [ -n "$TIME" ] && grep -E "Maximum resident set size" "$log" | sed 's/^\s*/  time -v: /'
  rm -f "$log"; echo "  (did not run in -Xmx$2)"; return 1
}

run normal "$XMX"
run offload "$XMX"
for h in $HEAPS_OFFLOAD; do
  run offload "$h" && break
done
