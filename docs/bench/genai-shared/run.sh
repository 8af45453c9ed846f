#!/bin/bash
# GenAI-layout graph at the bundled target's size, the engine's batched step before and after the shared
# past/present buffer (docs/benchmarks.md, "GenAI graphs on one buffer"). OLD and NEW are checkouts with
# target/quarkus-app built (./mvnw -o package -DskipTests); the graph comes from
#   /usr/bin/python3 tools/models/genai_fixture.py --bits 4 --size target --out /tmp/genai-target-int4
# Rounds alternate the two builds; medians of 20 calls per cell (DecodeBenchmark --batched).
set -euo pipefail
OLD=${OLD:-/work/old} NEW=${NEW:-/work/main} GRAPH=${GRAPH:-/tmp/genai-target-int4}
JAVA=${JAVA:-/usr/lib/jvm/temurin-25-jdk-amd64/bin/java}
ROUNDS=${ROUNDS:-2} PASTS=${PASTS:-"30 500"} REPS=${REPS:-20}
for round in $(seq 1 "$ROUNDS"); do
  for past in $PASTS; do
    for tree in "$OLD" "$NEW"; do
      echo "== round $round past $past $(cd "$tree" && git log -1 --format=%h) $(uptime | sed 's/.*load/load/')"
      (cd "$tree" && "$JAVA" -cp 'target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*' \
        --enable-native-access=ALL-UNNAMED dev.tandem.tools.DecodeBenchmark --batched "$GRAPH" 2 "$REPS" "$past" 2>/dev/null)
    done
  done
done
