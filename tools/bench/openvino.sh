#!/usr/bin/env bash
# OpenVINO against ONNX Runtime on the bundled int8 pair, 2 threads (docs/benchmarks.md,
# "OpenVINO against ONNX Runtime"): decode ms/token and verification cost side by side in one
# process with OpenVINO's knobs (DecodeBenchmark --engines), assisted speed-up per engine
# (AssistedBenchmark engine=), start-to-ready and RSS (start-to-ready.sh, engines alternating).
# Writes docs/bench/openvino-*.csv. A few minutes on 2 cores.
#
#   ./mvnw -B -o package -DskipTests && OPENVINO_HOME=../shared/openvino tools/bench/openvino.sh [runs=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-3}
: "${OPENVINO_HOME:?set OPENVINO_HOME to an OpenVINO runtime, e.g. ../shared/openvino}"
export OPENVINO_HOME
JAVA=$(bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
CP='target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*'
run() { "$JAVA" -cp "$CP" --enable-native-access=ALL-UNNAMED "$@" 2>/dev/null | grep -vE "INFO|WARN|^\s*at |^[A-Z][a-z]{2} [0-9]+, "; }
rm -f docs/bench/openvino-decode.csv
ENGINES='ort;openvino;openvino:hint=THROUGHPUT;openvino:precision=bf16;openvino:threads=1;ort:threads=1'
for m in models/kjv-target models/kjv-draft; do
  run dev.tandem.tools.DecodeBenchmark "$m" 2 128 "$RUNS" "--engines=$ENGINES" --csv=docs/bench/openvino-decode.csv
done
for e in ort openvino; do
  run dev.tandem.tools.AssistedBenchmark target=models/kjv-target draft=models/kjv-draft \
    prompts=tools/bench/prompts/heldout.txt engine=$e ks=5 temperatures=0 prompt-count=12 runs="$RUNS" \
    out=docs/bench/openvino-assisted-$e
  rm -f docs/bench/openvino-assisted-$e.svg
done
ENGINES="onnxruntime openvino" tools/bench/start-to-ready.sh models/kjv-target "$RUNS" 18377
