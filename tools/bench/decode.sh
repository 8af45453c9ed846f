#!/usr/bin/env bash
# Plain greedy decoding latency per token (DecodeBenchmark), for each model directory given, with
# 1 and 2 intra-op threads, plus the naive copying loop as a baseline.
#
#   ./mvnw package -DskipTests && tools/bench/decode.sh MODEL_DIR... [-- steps runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
JAVA=$(bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
CP='target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*'
models=(); steps=255; runs=5
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then steps=$2; runs=$3; break; fi
  models+=("$1"); shift
done
for m in "${models[@]}"; do
  for t in 1 2; do
    "$JAVA" -cp "$CP" --enable-native-access=ALL-UNNAMED  \
      dev.tandem.tools.DecodeBenchmark "$m" "$t" "$steps" "$runs" 2>/dev/null | grep -vE "INFO|WARN|^\s*at "
  done
done
