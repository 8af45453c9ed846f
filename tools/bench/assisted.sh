#!/usr/bin/env bash
# Plain vs assisted decoding side by side (AssistedBenchmark): tokens/s, speed-up, acceptance,
# k sweep, heuristic schedule, prompt lookup, copying workload; writes docs/bench/assisted.{csv,svg}.
#
#   ./mvnw package -DskipTests && tools/bench/assisted.sh [key=value ...]
# defaults: target=models/kjv-target draft=models/kjv-draft tokens=128 runs=3 prompt-count=32
set -euo pipefail
cd "$(dirname "$0")/../.."
JAVA=$(bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
CP='target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*'
exec "$JAVA" -cp "$CP" --enable-native-access=ALL-UNNAMED dev.tandem.tools.AssistedBenchmark \
  target=models/kjv-target draft=models/kjv-draft prompts=tools/bench/prompts/heldout.txt \
  copy=tools/bench/prompts/copy.txt out=docs/bench/assisted "$@"
