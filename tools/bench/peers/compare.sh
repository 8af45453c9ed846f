#!/usr/bin/env bash
# Tandem against llama.cpp on the same weights, 2 threads, side by side in one run (issue 17).
#
#   tools/bench/peers/compare.sh          (root; after setup-chroot.sh, convert.sh and ./mvnw -B -o package -DskipTests)
#   RUNS=5 TOKENS=256 COUNT=8 K=5 PEERS_PORT=18241 PEERS_LOCK=/work/bench.lock
#   PEERS_MAX_BUSY=10 PEERS_WAIT_QUIET=0 PEERS_FORCE=0 (see quiet_check in lib.sh)
#
# 1. llama-bench -t 2 on the F32 and Q8_0 GGUFs: decode (tg128 from an empty context: ms/token) and one forward
#    of 1 and of 6 tokens after a 30-token past (pp1, pp6 at depth 30); medians of RUNS*5 repetitions.
# 2. Tandem's DecodeBenchmark on models/kjv-target with ONNX Runtime (the graph it serves, model_optimized.onnx;
#    TANDEM_GRAPH=model.onnx for the portable one), 2 threads: the same three figures
#    (128 greedy steps from BOS; forward of 1 and 6 tokens after a 30-token past).
# 3. Over HTTP, greedy completions of exactly TOKENS tokens (EOS ignored) on COUNT held-out prompts, RUNS runs,
#    the configurations in a rotating order: Tandem plain, assisted (its draft, constant k=K) and assisted under the
#    service's own policy ("tandem auto": no k in the request, tandem.assisted.policy=auto chooses) in one service;
#    llama-server plain and speculative (--spec-type draft-simple, the converted draft in the target's format,
#    --spec-draft-n-max K --spec-draft-n-min 0 --spec-draft-p-min 0: always K candidates, as Tandem's constant k)
#    for F32 and Q8_0. tokens/s measured by the client (peers.py timing). A config-run during which other
#    processes used more than 2% of the CPU is kept in http.csv but left out of the medians (llama.cpp at -t 2
#    slows down many times when anything else wakes up; Tandem hardly notices).
# The machine must be quiet (quiet_check in lib.sh); the whole run holds $PEERS_LOCK so that no other benchmark
# overlaps it, and pauses the background training of this machine (lib.sh) until it ends.
# Output: $OUT [docs/bench/peers]/{llama-bench.json,tandem-decode.csv,http.csv,compare.md}.
set -euo pipefail
LOCK=${PEERS_LOCK:-/work/bench.lock}
[[ -d $(dirname "$LOCK") ]] || LOCK=/tmp/tandem-bench.lock
if [[ -z ${PEERS_LOCKED:-} ]]; then
  echo "== waiting for $LOCK"
  PEERS_LOCKED=1 exec flock "$LOCK" "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-5}
TOKENS=${TOKENS:-256}
COUNT=${COUNT:-8}
K=${K:-5}
PORT=${PEERS_PORT:-18241}
cd "$REPO"
OUT=${OUT:-docs/bench/peers}
mkdir -p "$OUT"
export PEERS_WARNINGS=$OUT/warnings.txt
: >"$PEERS_WARNINGS"
JAVA=$(bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
CP='target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*'
STARTED=$(date -u +%FT%TZ)

peers_mount
peers_pause_training
sleep 3
quiet_check "before llama-bench"
echo "== llama-bench (decode, then forwards of 1 and 6 tokens after 30)"
in_chroot llama-bench -m /peers/kjv-target-f32.gguf,/peers/kjv-target-q8_0.gguf,/peers/kjv-target-q4_0.gguf -t 2 -p 0 -n 128 -r $((RUNS * 5)) -o json \
  >"$OUT/llama-bench-tg.json" 2>"$PEERS_OUT/llama-bench.log"
in_chroot llama-bench -m /peers/kjv-target-f32.gguf,/peers/kjv-target-q8_0.gguf,/peers/kjv-target-q4_0.gguf -t 2 -p 1,6 -n 0 -d 30 -r $((RUNS * 5)) -o json \
  >"$OUT/llama-bench-pp.json" 2>>"$PEERS_OUT/llama-bench.log"

quiet_check "before Tandem's DecodeBenchmark"
echo "== Tandem DecodeBenchmark"
rm -f "$OUT/tandem-decode.csv"
"$JAVA" -cp "$CP" --enable-native-access=ALL-UNNAMED dev.tandem.tools.DecodeBenchmark models/kjv-target 2 128 "$RUNS" \
  --engines=ort --graph="${TANDEM_GRAPH:-model_optimized.onnx}" --csv="$OUT/tandem-decode.csv" 2>&1 | grep -v "^WARN\|^\s*at " | tail -n 4

echo "== servers (Tandem on $PORT, llama-server on $((PORT + 1))..$((PORT + 6)))"
start_tandem "$PORT"
common=(-t 2 -c 1024 -np 1)
spec=(--spec-type draft-simple --spec-draft-n-max "$K" --spec-draft-n-min 0 --spec-draft-p-min 0)
start_llama cmp-f32 $((PORT + 1)) -m /peers/kjv-target-f32.gguf "${common[@]}"
start_llama cmp-f32-spec $((PORT + 2)) -m /peers/kjv-target-f32.gguf -md /peers/kjv-draft-f32.gguf "${common[@]}" "${spec[@]}"
start_llama cmp-q8 $((PORT + 3)) -m /peers/kjv-target-q8_0.gguf "${common[@]}"
start_llama cmp-q8-spec $((PORT + 4)) -m /peers/kjv-target-q8_0.gguf -md /peers/kjv-draft-q8_0.gguf "${common[@]}" "${spec[@]}"
start_llama cmp-q4 $((PORT + 5)) -m /peers/kjv-target-q4_0.gguf "${common[@]}"
start_llama cmp-q4-spec $((PORT + 6)) -m /peers/kjv-target-q4_0.gguf -md /peers/kjv-draft-q8_0.gguf "${common[@]}" "${spec[@]}"
sleep 2
quiet_check "servers started and idle"
echo "== HTTP: $COUNT prompts x $TOKENS tokens x $RUNS runs"
L=http://127.0.0.1
python3 tools/bench/peers/peers.py timing --runs "$RUNS" --tokens "$TOKENS" --count "$COUNT" \
  --prompts tools/bench/prompts/heldout.txt --out "$OUT/http.csv" --own-pids "$(IFS=,; echo "${_peers_pids[*]}")" \
  "tandem plain=tandem:0:$L:$PORT" "tandem draft k$K=tandem:$K:$L:$PORT" "tandem auto=tandem:auto:$L:$PORT" \
  "llama.cpp F32 plain=llama:$L:$((PORT + 1))" "llama.cpp F32 draft k$K=llama:$L:$((PORT + 2))" \
  "llama.cpp Q8_0 plain=llama:$L:$((PORT + 3))" "llama.cpp Q8_0 draft k$K=llama:$L:$((PORT + 4))" \
  "llama.cpp Q4_0 plain=llama:$L:$((PORT + 5))" "llama.cpp Q4_0 draft k$K=llama:$L:$((PORT + 6))" >/dev/null
peers_cleanup
FINISHED=$(date -u +%FT%TZ)
python3 tools/bench/peers/peers.py summary --out-dir "$OUT" --k "$K" --tokens "$TOKENS" --count "$COUNT" --runs "$RUNS" \
  --when "$STARTED – $FINISHED" --warnings "$PEERS_WARNINGS" \
  --tandem-label "${TANDEM_GRAPH:-model_optimized.onnx}" | tee "$OUT/compare.md"
