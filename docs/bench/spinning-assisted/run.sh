#!/usr/bin/env bash
# Session 13: AssistedBenchmark with ONNX Runtime pool spinning off, on (global pool), on (per-session pool with
# force_spinning_stop), two interleaved rounds. Needs ./mvnw -B -q package -DskipTests first.
cd "$(dirname "$0")/../../.."  # the repository
J=/usr/lib/jvm/temurin-25-jdk-amd64/bin/java
CP='target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*'
for round in 1 2; do
for cfg in "nospin:-Dtandem.onnxruntime.spinning=false" "globalspin:-Dtandem.onnxruntime.spinning=true" "sessionspin:-Dtandem.onnxruntime.spinning=true -Dtandem.onnxruntime.global-thread-pool=false"; do
  name=${cfg%%:*}; opts=${cfg#*:}
  echo "=== $name round $round $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  $J $opts -cp "$CP" --enable-native-access=ALL-UNNAMED dev.tandem.tools.AssistedBenchmark target=models/kjv-target draft=models/kjv-draft \
    prompts=tools/bench/prompts/passages.txt tokens=256 prompt-count=16 runs=3 ks=3 temperatures=0,0.8 out=docs/bench/spinning-assisted/$name-r$round > docs/bench/spinning-assisted/$name-r$round.log 2>&1
done; done
echo DONE $(date -u +%T)
