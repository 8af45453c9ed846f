#!/usr/bin/env bash
# Memory plan of a model directory (parameters, weight bytes per precision, KV cache per token and per
# full context as the engine allocates it, full-context sequences that fit a budget): the figures
# GET /v1/models/{id} serves as "memory", for sizing pods before deploying.
#
#   ./mvnw package -DskipTests && tools/plan.sh models/kjv-target [--budget 384M] [--draft models/kjv-draft] [--context N] [--max-batched-tokens N] [--policy auto|fixed]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)  # paths given are taken from the current directory
JAVA=$(bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
[ -n "$JAVA" ] || { echo "plan.sh: no JDK >= 25 under /usr/lib/jvm" >&2; exit 1; }
[ -d "$ROOT/target/quarkus-app/lib/main" ] || { echo "plan.sh: build first: ./mvnw package -DskipTests" >&2; exit 1; }
CP="$ROOT/target/quarkus-app/app/*:$ROOT/target/quarkus-app/lib/main/*:$ROOT/target/quarkus-app/lib/boot/*"
exec "$JAVA" -cp "$CP" --enable-native-access=ALL-UNNAMED dev.tandem.tools.MemoryPlanner "$@"
