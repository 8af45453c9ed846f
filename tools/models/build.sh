#!/usr/bin/env bash
# Model factory: rebuilds the KJV tokenizer and models from scratch (or resumes) and packages them
# into models/<name>/. Every step is resumable: rerun the same command after an interruption.
#
#   tools/models/build.sh                 # everything: data draft target
#   tools/models/build.sh data            # corpus + held-out split + tokenizer (+ verification)
#   tools/models/build.sh draft           # train the draft directly, export, quantise, check, package models/kjv-draft
#   tools/models/build.sh target          # train the target, export, quantise, check, package models/kjv-target
#   tools/models/build.sh distill         # phase B: distil the draft from the target, package models/kjv-draft
#   tools/models/build.sh onpolicy        # phase C: fine-tune the distilled draft on its own samples, package models/kjv-draft
#   tools/models/build.sh pair            # drafts-vs-target acceptance (greedy, T 0.8) into both model cards (repackages both)
#   tools/models/build.sh package-draft   # only export/quantise/check/package from the existing checkpoint
#   tools/models/build.sh slots-tiny      # the random tiny slots-layout fixture of the Java tests (src/test/resources/models/slots-tiny)
#   tools/models/build.sh slots-tiny-external # slots-tiny with its weights in model.onnx_data (external data fixture)
#   tools/models/build.sh genai-tiny      # tiny random Llamas in the ONNX Runtime GenAI builder's CPU layout, int4 and int8
#                                         # (src/test/resources/models/genai-tiny-int4, -int8, and int4 in blocks of 128:
#                                         # -int4-b128), checked by GenAiLayoutTest
#   tools/models/build.sh optimum-tiny    # the Optimum variants of the Java tests (no position_ids + several EOS ids, fp16,
#                                         # merged decoder): src/test/resources/models/optimum-tiny-*
#   tools/models/build.sh slots-target    # models/kjv-target re-exported in the slots layout -> work/slots-target/kjv-target-slots
#   tools/models/build.sh slots-draft     # models/kjv-draft likewise -> work/slots-draft/kjv-draft-slots
#   tools/models/build.sh fast-target     # issue 17: models/kjv-target rebuilt with fewer nodes (fuse_graph.py), checked
#                                         # and timed against it -> work/fast-target/kjv-target-fast
#   tools/models/build.sh fast-draft      # issue 17: models/kjv-draft rebuilt the same way, checked and timed
#   tools/models/build.sh optimized       # issue 17: models/*/model_optimized.onnx (the graphs ONNX Runtime runs)
#                                         # from models/*/model.onnx, checked, timed, in the cards and SHA256SUMS
#   tools/models/build.sh passages-target # second edition (issue 18): the target continued on passages at context 1024
#                                         # (training only; 1 torch thread at nice 19; NOTES.md "Passages")
#   tools/models/build.sh passages-drafts # second edition: the draft continued on passages, then a larger d-256x2 draft
#   tools/models/build.sh passages-onpolicy # second edition, phase C: the distilled draft tuned on its own samples
#   tools/models/build.sh passages-onpolicy2 # ... a second round on the tuned draft's new samples
#   tools/models/build.sh package-edition2 # second edition: export (target: Optimum + slots layouts, step-invariant),
#                                         # quantise, OnnxCheck (step/batch invariance must be 0), held-out passage and
#                                         # per-verse ppl, pair acceptance on passage prompts (greedy, T 0.8), model
#                                         # cards -> $MODELS_OUT (default models/). Settings: ED2_* variables below
#                                         # (checkpoints, ED2_TARGET_LAYOUT=optimum|slots, ED2_DRAFT_LAYOUT=slots|optimum,
#                                         # ED2_EVAL_LIMIT, ED2_PAIR_N, ...).
#                                         # Preview on unfinished checkpoints:
#                                         #   ED2_ALLOW_UNFINISHED=1 MODELS_OUT=work/models-preview ED2_EVAL_LIMIT=4 \
#                                         #   ED2_PAIR_N=4 ED2_PAIR_SAMPLED_N=4 tools/models/build.sh package-edition2
#
# Needs (Debian): python3-torch python3-onnx python3-sentencepiece python3-numpy libopenblas0-pthread
# bible-kjv, a JDK (>= 22) and Maven (ONNX Runtime Java for the checks). Long steps run under nice.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"
PY=/usr/bin/python3
NICE="nice -n 15"
JAVA="${JAVA:-$(ls -d /usr/lib/jvm/temurin-25-jdk-amd64/bin/java 2>/dev/null || command -v java)}"
ORT_VER=1.29.0
ORT_JAR="$HOME/.m2/repository/com/microsoft/onnxruntime/onnxruntime/$ORT_VER/onnxruntime-$ORT_VER.jar"

# model recipes (see NOTES.md for the measurements behind them)
DRAFT_ARGS=(--preset draft --tokens 6e6 --batch 32 --lr 3e-3 --warmup 50 --out work/draft)
# phase B: the draft distilled from the target (KL to the target's next-token distribution), starting
# from the directly trained draft's weights
DISTILL_ARGS=(--preset draft --init work/draft/ckpt.pt --teacher work/target/ckpt.pt --kd-alpha 0.9
              --tokens ${DISTILL_TOKENS:-2e6} --batch 32 --lr 1e-3 --warmup 30 --out work/draft-kd)
# phase C: the draft samples text at the serving temperature (0.8); it is then fine-tuned to the target's
# distribution on that text with total variation at 0.8 as the loss (1 - TV is the speculative acceptance
# rate). Two rounds: the distilled draft -> work/draft-op, then work/draft-op on its own new samples ->
# work/draft-op2 (served). NOTES.md "Phase C"
onpolicy_round() {  # $1 = checkpoint dir to start from (and sample with), $2 = output dir, $3 = samples file, $4 = LR,
                    # $5 = tokens to sample, $6 = tokens to train on
  $NICE $PY sample_text.py --model "$1/ckpt.pt" --temperature 0.8 --tokens "$5" --out "$3"
  train_until_done --preset draft --init "$1/ckpt.pt" --teacher work/target/ckpt.pt --kd-alpha 1.0 --kd-loss tvd \
    --kd-temp 0.8 --samples "$3" --samples-frac 1.0 --tokens "$6" --batch 32 --lr "$4" --warmup 20 \
    --ckpt-minutes 5 --out "$2"
}
# second edition: the first edition's target rebuilt from its packaged int8 ONNX (from_onnx.py), continued on
# passages (a chapter's verses joined with "\n") at context 1024. One torch thread at nice 19: the other core
# belongs to the Java engineers. Token budget from the measured 147 tok/s under load (NOTES.md "Passages").
PASSAGES_TARGET_ARGS=(--preset t-512x8 --data passages --seq 1024 --init work/target-v1/ckpt.pt
                      --tokens ${PASSAGES_TARGET_TOKENS:-3e6} --batch 4 --lr 5e-4 --warmup 30 --threads 1
                      --ckpt-minutes 5 --eval-minutes 30 --out work/target-passages)
# the drafts' first phase on passages (direct training, no teacher; distillation from the finished passage target
# follows): the first-edition draft continued, and a larger candidate from scratch. One thread each, nice 19.
PASSAGES_DRAFT_ARGS=(--preset draft --data passages --seq 1024 --init work/draft-v1/ckpt.pt
                     --tokens ${PASSAGES_DRAFT_TOKENS:-3e6} --batch 8 --lr 1e-3 --warmup 30 --threads 1
                     --ckpt-minutes 5 --eval-minutes 15 --out work/draft-passages)
PASSAGES_DRAFT256_ARGS=(--preset d-256x2 --data passages --seq 1024
                        --tokens ${PASSAGES_DRAFT256_TOKENS:-8e6} --batch 8 --lr 3e-3 --warmup 50 --threads 1
                        --ckpt-minutes 5 --eval-minutes 15 --out work/draft256-passages)
# both passage drafts distilled from the finished passage target (KL to its next-token distribution, 0.1 CE),
# in parallel, one thread each at nice 19; the served speed-up decides which ships (NOTES.md "Second edition")
PASSAGES_KD_ARGS=(--preset draft --init work/draft-passages/ckpt.pt --out work/draft-kd-passages)
PASSAGES_KD256_ARGS=(--preset d-256x2 --init work/draft256-passages/ckpt.pt --out work/draft256-kd-passages)
PASSAGES_KD_COMMON=(--data passages --seq 1024 --teacher work/target-passages/ckpt.pt --kd-alpha 0.9
                    --tokens ${PASSAGES_KD_TOKENS:-1e6} --batch 8 --lr 1e-3 --warmup 30 --threads 1
                    --ckpt-minutes 5 --eval-minutes 20)
TARGET_ARGS=(--preset t-512x8 --tokens ${TARGET_TOKENS:-3e6} --batch 16 --lr 1e-3 --warmup 50 --ckpt-minutes 5 --out work/target)

need_ort() { [ -f "$ORT_JAR" ] || mvn -q dependency:get -Dartifact=com.microsoft.onnxruntime:onnxruntime:$ORT_VER; }

stage_data() {
  $PY corpus.py
  $PY tokenizer.py
}

# export + quantise + ONNX Runtime check + package: $1 = work dir, $2 = models/ name, $3 = status line
finish() {
  local dir=$1 name=$2 status=$3
  # the target's graph must give a token the same logits in a decode step and in a verification (greedy
  # assisted == plain); a draft's need not, and the plain attention is faster (NOTES.md "Step invariance")
  local attention=step-invariant checkopt=()
  [ "$name" = kjv-draft ] && attention=plain checkopt=(--step-variance-ok)
  $NICE $PY export_onnx.py --ckpt "$dir/ckpt.pt" --out "$dir/export" --attention $attention
  $NICE $PY quantize.py --embedding "$dir/export/model_fp32.onnx" "$dir/export/model_int8.onnx"
  need_ort
  $NICE "$JAVA" -cp "$ORT_JAR" --enable-native-access=ALL-UNNAMED OnnxCheck.java \
    --ref "$dir/export/ref.bin" --heldout "$dir/export/heldout.bin" --json "$dir/export/check.json" "${checkopt[@]}" \
    "$dir/export/model_fp32.onnx:1e-4" "$dir/export/model_int8.onnx"
  package "$dir" "$name" "$status"
}

# package only (no re-export): $1 = work dir with export/, $2 = models/ name, $3 = status line
package() {
  local dir=$1 name=$2 status=$3
  local extra=()
  [ "$name" = kjv-draft ] && extra=(--extra model_fp32.onnx)
  local pair=()
  for j in work/pair/onpolicy2.json work/pair/onpolicy.json work/pair/distilled.json work/pair/direct.json; do [ -f "$j" ] && pair+=(--pair "$j"); done
  for j in work/pair/onpolicy2-t08.json work/pair/onpolicy-t08.json work/pair/distilled-t08.json work/pair/direct-t08.json; do
    [ -f "$j" ] && pair+=(--pair-sampled "$j")
  done
  $PY package.py --name "$name" --export "$dir/export" --onnx model_int8.onnx "${extra[@]}" "${pair[@]}" --status "$status"
}

train_until_done() {  # resumes from <out>/ckpt.pt; returns when the schedule is complete
  $NICE $PY train.py "$@"
}

stage_draft() {
  train_until_done "${DRAFT_ARGS[@]}"
  stage_package-draft
}
stage_package-draft() {
  finish work/draft kjv-draft "${DRAFT_STATUS:-first version: trained directly on the corpus, not yet distilled from the target.}"
}
stage_distill() {   # needs the draft and target checkpoints
  train_until_done "${DISTILL_ARGS[@]}"
  stage_package-distilled
}
stage_onpolicy() {  # needs the distilled draft and the target
  mkdir -p work/samples
  onpolicy_round work/draft-kd work/draft-op work/samples/draft-t08.npy 1e-3 2e6 2e6
  onpolicy_round work/draft-op work/draft-op2 work/samples/draft-op-t08.npy 5e-4 1e6 1.5e6
  stage_package-onpolicy
}
ONPOLICY_CARD_STATUS="distilled from kjv-target, then fine-tuned in two rounds on its own samples at temperature 0.8 (total variation to the target distribution)."
TARGET_CARD_STATUS="target model, trained directly on the corpus."
stage_package-onpolicy() {
  finish work/draft-op2 kjv-draft "${DRAFT_STATUS:-$ONPOLICY_CARD_STATUS}"
}
stage_pair() {   # acceptance of the drafts against the target (for the model cards), then repackage both
  mkdir -p work/pair
  local d name dir label
  for d in onpolicy2:draft-op2:"kjv-draft (two rounds on its own samples, served)" \
           onpolicy:draft-op:"one round on its own samples (not shipped)" \
           distilled:draft-kd:"distilled (phase B, not shipped)" \
           direct:draft:"first version (trained directly, not shipped)"; do
    IFS=: read -r name dir label <<< "$d"
    [ -f "work/$dir/ckpt.pt" ] || continue
    $NICE $PY accept.py --draft "work/$dir/ckpt.pt" --target work/target/ckpt.pt --n 50 --max-new 128 --k 5 \
      --label "$label" > "work/pair/$name.json"
    $NICE $PY accept_sampled.py --draft "work/$dir/ckpt.pt" --target work/target/ckpt.pt --n 200 --draft-temps 0.8 \
      --label "$label" > "work/pair/$name-t08.json"
  done
  # the cards only: the exported graphs stay as they are
  package work/target kjv-target "${TARGET_STATUS:-$TARGET_CARD_STATUS}"
  package work/draft-op2 kjv-draft "${DRAFT_STATUS:-$ONPOLICY_CARD_STATUS}"
}
stage_package-distilled() {
  finish work/draft-kd kjv-draft "${DRAFT_STATUS:-distilled from kjv-target (KL to its next-token distribution), initialised from the directly trained draft.}"
}
stage_passages-target() {
  # the start: the packaged first-edition target, unless a run to resume exists (work/ or the mirror)
  if [ ! -f work/target-passages/ckpt.pt ] && [ ! -f "${TANDEM_CKPT_MIRROR:-/var/tmp/tandem-models}/target-passages/ckpt.pt" ] \
      && [ ! -f work/target-v1/ckpt.pt ]; then
    $NICE $PY from_onnx.py --onnx ../../models/kjv-target/model.onnx --out work/target-v1
  fi
  # its pid in work/train-target.pid: `kill -STOP <pid>` pauses it (a quiet machine for benchmarks), `kill -CONT <pid>`
  # resumes it; killing it loses at most 5 minutes (rerun this stage to resume)
  OMP_NUM_THREADS=1 nice -n 19 $PY train.py "${PASSAGES_TARGET_ARGS[@]}" &
  local pid=$!
  echo $pid > work/train-target.pid
  wait $pid
  rm -f work/train-target.pid
}
stage_passages-drafts() {  # sequential, one thread; its pid in work/train-draft.pid (pause as the target's)
  if [ ! -f work/draft-v1/ckpt.pt ]; then
    $NICE $PY from_onnx.py --onnx ../../models/kjv-draft/model_fp32.onnx --out work/draft-v1
  fi
  local args
  for args in PASSAGES_DRAFT_ARGS PASSAGES_DRAFT256_ARGS; do
    local -n a=$args
    OMP_NUM_THREADS=1 nice -n 19 $PY train.py "${a[@]}" &
    echo $! > work/train-draft.pid
    wait $!
  done
  rm -f work/train-draft.pid
}
stage_passages-distill() {  # pids in work/train-kd*.pid (pause as the target's)
  OMP_NUM_THREADS=1 nice -n 19 $PY train.py "${PASSAGES_KD_ARGS[@]}" "${PASSAGES_KD_COMMON[@]}" &
  echo $! > work/train-kd.pid
  OMP_NUM_THREADS=1 nice -n 19 $PY train.py "${PASSAGES_KD256_ARGS[@]}" "${PASSAGES_KD_COMMON[@]}" &
  echo $! > work/train-kd256.pid
  wait
  rm -f work/train-kd.pid work/train-kd256.pid
}
# phase C for the second edition: the distilled 0.9M passage draft samples 500-token continuations of 64-token
# passage windows at 0.8 (rows of 512), then is fine-tuned on them with total variation at 0.8 against the passage
# target, as the first edition's rounds (NOTES.md "Phase C"). Served requests are 50-250 prompt + 256 new tokens,
# so rows of 512 cover them at half the attention cost of 1024. Two threads at nice 19 (pause: work/train-op.pid).
passages_onpolicy_round() {  # $1 start checkpoint dir, $2 out dir, $3 samples, $4 LR, $5 tokens sampled, $6 trained
  nice -n 19 $PY sample_text.py --data passages --seq 512 --prompt 64 --model "$1/ckpt.pt" --temperature 0.8 \
    --tokens "$5" --out "$3" &
  echo $! > work/train-op.pid; wait $!
  nice -n 19 $PY train.py --preset draft --data passages --seq 512 --init "$1/ckpt.pt" \
    --teacher work/target-passages/ckpt.pt --kd-alpha 1.0 --kd-loss tvd --kd-temp 0.8 --samples "$3" \
    --samples-frac 1.0 --tokens "$6" --batch 16 --lr "$4" --warmup 20 --ckpt-minutes 5 --eval-minutes 30 --out "$2" &
  echo $! > work/train-op.pid; wait $!
  rm -f work/train-op.pid
}
stage_passages-onpolicy() {
  mkdir -p work/samples
  passages_onpolicy_round work/draft-kd-passages work/draft-op-passages work/samples/draft-passages-t08.npy \
    1e-3 ${PASSAGES_OP_SAMPLE_TOKENS:-1e6} ${PASSAGES_OP_TOKENS:-1e6}
}
stage_passages-onpolicy2() {  # a second round on the tuned draft's own new samples, at half the LR (as the first edition's)
  mkdir -p work/samples
  passages_onpolicy_round work/draft-op-passages work/draft-op2-passages work/samples/draft-op-passages-t08.npy \
    5e-4 ${PASSAGES_OP_SAMPLE_TOKENS:-1e6} ${PASSAGES_OP_TOKENS:-1e6}
}
stage_target() {
  train_until_done "${TARGET_ARGS[@]}"
  stage_package-target
}
stage_package-target() {
  finish work/target kjv-target "${TARGET_STATUS:-$TARGET_CARD_STATUS}"
}

# the "slots" KV layout (/work/notes/slots.md, NOTES.md "Slots layout")
check() { need_ort; $NICE "$JAVA" -cp "$ORT_JAR" --enable-native-access=ALL-UNNAMED OnnxCheck.java "$@"; }
stage_slots-tiny() {  # seeded, so rerunning reproduces the committed files byte for byte
  local out=../../src/test/resources/models/slots-tiny
  $PY slots_fixture.py --out $out --work work/slots-tiny
  check --ref work/slots-tiny/ref.bin --json work/slots-tiny/check.json "$out/model_fp32.onnx:1e-4" "$out/model.onnx"
  local r
  for r in work/slots-tiny/ref-p*.bin; do  # greedy of the other reference prompts (both graphs must match torch)
    check --ref "$r" "$out/model_fp32.onnx:1e-4" "$out/model.onnx:10" | grep -E "greedy|PASS|FAIL"
  done
}
# slots-tiny re-saved with its weights in an external data file (model.onnx + model.onnx_data, as Optimum writes):
# the fixture of the Java tests' external-data runs (issue 16). The fp32 graph is not copied (kept small). The Java
# tests check it (SlotsContractTest: every engine gives it the in-file graph's logits bit for bit).
stage_slots-tiny-external() {
  local src=../../src/test/resources/models/slots-tiny out=../../src/test/resources/models/slots-tiny-external
  $PY external_data.py --src $src --out $out --graph model.onnx --location model.onnx_data \
    --copy config.json generation_config.json tokenizer.json tokenizer_config.json reference.json
}
# Issue 16: a tiny seeded random Llama in the layout onnxruntime_genai.models.builder writes for the CPU
# (GroupQueryAttention, MatMulNBits int4 and int8, genai_config.json), the fixtures of GenAiLayoutTest; byte-reproducible.
# The same model as the builder's -p fp16 writes it (float16 weights, activations, caches and logits; the builder's
# io_dtype is float16 for fp16 on every EP, the CPU included) and all float32 (-p fp32; GenAiSharedBufferTest's).
# No ONNX Runtime in Python here: the Java test is the check (greedy = reference.json, parity, rollback, assisted).
stage_genai-tiny() {
  local bits
  for bits in 4 8; do
    $NICE $PY genai_fixture.py --bits $bits --out ../../src/test/resources/models/genai-tiny-int$bits
  done
  $NICE $PY genai_fixture.py --bits 4 --block 128 --intermediate 256 --out ../../src/test/resources/models/genai-tiny-int4-b128
  for bits in 16 32; do
    $NICE $PY genai_fixture.py --bits $bits --out ../../src/test/resources/models/genai-tiny-fp$bits
  done
  (cd ../.. && ./mvnw -B -o -q test -Dtest='GenAiLayoutTest,GenAiSharedBufferTest')
}
# The Optimum export variants users bring (issue 16 item 3), from slots-tiny's weights: optimum_fixture.py. Seeded,
# byte-reproducible; the Java tests (OrtOptimumVariantsTest) check each against its torch reference.json.
stage_optimum-tiny() {
  $NICE $PY optimum_fixture.py --out ../../src/test/resources/models --work work/optimum-tiny
}
# A bundled model re-exported in the slots layout: $1 = models/ name, $2 = its packaged graph to rebuild the fp32
# checkpoint from (from_onnx.py), $3 = work dir, $4 = held-out prompts to compare greedy on besides the card's, then
# OnnxCheck options. The slots graph is exported from the rebuilt checkpoint, quantised, and given the shipped
# quantised weight bytes (slots_target.py transplant; NOTES.md "Slots layout"): it computes with exactly the
# shipped weights. The result is a model directory $3/<name>-slots (not in models/, which must stay small).
slots_model() {
  local name=$1 source=$2 dir=$3 heldout=$4; shift 4
  local shipped=../../models/$name
  # --max-pos 256: the shipped config (from_onnx.py defaults to the second edition's 1024)
  [ -f $dir/ckpt.pt ] || $NICE $PY from_onnx.py --onnx $source --out $dir --max-pos 256
  $NICE $PY export_onnx.py --layout slots --ckpt $dir/ckpt.pt --out $dir/export
  $NICE $PY quantize.py --embedding $dir/export/model_fp32.onnx $dir/export/model_int8_requant.onnx
  # re-quantising the dequantised weights gives the shipped uint8 weights back, but some scales differ by 1 ulp
  # (recorded in compare_requant.json; enough to flip a greedy near-tie): the served graph takes the shipped bytes
  $PY slots_target.py compare $shipped/model.onnx $dir/export/model_int8_requant.onnx $dir/export/compare_requant.json || true
  $PY slots_target.py transplant $shipped/model.onnx $dir/export/model_int8_requant.onnx $dir/export/model_int8.onnx
  $PY slots_target.py compare $shipped/model.onnx $dir/export/model_int8.onnx $dir/export/compare.json
  $PY slots_target.py prompts $dir/card_prompts.bin $heldout
  # the fp32 graph against torch; then the shipped graph and the slots int8 graph: both invariant to the bit
  # (the slots one also across batches), and the same greedy continuations of the prompts
  check --ref $dir/export/ref.bin --json $dir/export/check_fp32.json "$dir/export/model_fp32.onnx:1e-4"
  check --ref $dir/export/ref.bin --heldout $dir/export/heldout.bin --json $dir/export/check.json \
    --prompts $dir/card_prompts.bin --max-new 60 "$@" $shipped/model.onnx $dir/export/model_int8.onnx
  $PY slots_target.py texts $dir/export/check.json
  local out=$dir/$name-slots
  mkdir -p $out
  cp $dir/export/model_int8.onnx $out/model.onnx
  cp $shipped/config.json $shipped/generation_config.json $shipped/tokenizer.json $shipped/tokenizer_config.json $out/
  # a directory that ships its fp32 graph too (the draft) gets the fp32 slots graph
  [ -f $shipped/model_fp32.onnx ] && cp $dir/export/model_fp32.onnx $out/model_fp32.onnx
  echo "slots-layout $name: $HERE/$out"
}
# The bundled target: its fp32 checkpoint is not kept, from_onnx.py dequantises the shipped int8 graph.
stage_slots-target() {
  slots_model kjv-target ../../models/kjv-target/model.onnx work/slots-target 0
}
# The bundled draft (issue 15: the draft's proposal steps of all assisted sequences in one batched call). Its fp32
# graph is shipped, so the rebuilt checkpoint has exactly its weights. The shipped graph has the plain attention
# (not step-invariant: --step-variance-ok applies to it; a slots graph is always row-wise and must be invariant), so
# the slots graph need not continue the prompts exactly as it does (--greedy-differ-ok): OnnxCheck reports the
# agreement on the card prompts and 50 held-out prompts (the pair measurement's) and the logit differences.
stage_slots-draft() {
  slots_model kjv-draft ../../models/kjv-draft/model_fp32.onnx work/slots-draft 50 --step-variance-ok --greedy-differ-ok
}

# Issue 17: the shipped target rebuilt with fewer nodes per step (fuse_graph.py; NOTES.md "Faster step"). Writes
# work/fast-target/<variant>.onnx for FAST_VARIANTS ("name:options;..."), checks them after the shipped graph
# (OnnxCheck: step, batch and placement invariance must be 0; greedy on the card + 20 held-out prompts and held-out
# verse ppl reported against the shipped graph), times them (StepBench, under /work/bench.lock when it exists) and
# assembles work/fast-target/kjv-target-fast/ (the shipped directory with model.onnx = the first variant).
FAST_OPTS="--matmul nbits8 --block 64 --skip-norm --rotary contrib --fused-scores --attention mixed --scatter nd"
FAST_VARIANTS=${FAST_VARIANTS:-"nbits8-b64-mixed:$FAST_OPTS;nbits8-b32:--matmul nbits8 --block 32 --skip-norm --rotary contrib --fused-scores"}
stage_fast-target() {
  local dir=work/fast-target shipped=../../models/kjv-target/model.onnx graphs=() first=
  mkdir -p $dir
  [ -f work/corpus/heldout_meta.tsv ] && [ -f work/tok/kjv4096.model ] || stage_data
  $PY fuse_graph.py --check-data --out $dir
  $PY slots_target.py prompts $dir/prompts.bin 20 > /dev/null
  local v
  IFS=';' read -ra vs <<< "$FAST_VARIANTS"
  for v in "${vs[@]}"; do
    # shellcheck disable=SC2086
    $PY fuse_graph.py --src $shipped --out $dir/${v%%:*}.onnx ${v#*:}
    graphs+=($dir/${v%%:*}.onnx)
    first=${first:-$dir/${v%%:*}.onnx}
  done
  check --ref $dir/ref.bin --heldout $dir/heldout.bin --prompts $dir/prompts.bin --max-new 40 --greedy-differ-ok \
    --json $dir/check.json $shipped "${graphs[@]}"
  local lock=(); [ -e /work/bench.lock ] && lock=(flock /work/bench.lock)
  local t
  for t in "--tokens 1" "--tokens 6" "--batch 8 --tokens 1"; do
    # shellcheck disable=SC2086
    "${lock[@]}" "$JAVA" -cp "$ORT_JAR" --enable-native-access=ALL-UNNAMED StepBench.java $t $shipped "${graphs[@]}"
  done
  mkdir -p $dir/kjv-target-fast
  cp ../../models/kjv-target/{config.json,generation_config.json,tokenizer.json,tokenizer_config.json} $dir/kjv-target-fast/
  cp "$first" $dir/kjv-target-fast/model.onnx
  echo "fast target: $HERE/$dir/kjv-target-fast (model.onnx = $first)"
}
# the same for the draft (issue 17, part 2b): models/kjv-draft rebuilt with $FAST_OPTS -> work/fast-draft/draft-fast.onnx,
# checked after the shipped draft (invariance must be 0: seeded sampled requests batch the draft's proposals) and
# timed at B 1/8 x T 1/8. Needs work/fast-target's check data (build.sh fast-target first).
stage_fast-draft() {
  local dir=work/fast-draft shipped=../../models/kjv-draft/model.onnx data=work/fast-target
  mkdir -p $dir
  # shellcheck disable=SC2086
  $PY fuse_graph.py --src $shipped --out $dir/draft-fast.onnx $FAST_OPTS
  check --ref $data/ref.bin --heldout $data/heldout.bin --prompts $data/prompts.bin --max-new 40 --greedy-differ-ok \
    --json $dir/check.json $shipped $dir/draft-fast.onnx
  local lock=(); [ -e /work/bench.lock ] && lock=(flock /work/bench.lock)
  local t
  for t in "--tokens 1" "--tokens 8" "--batch 8 --tokens 1" "--batch 8 --tokens 8"; do
    # shellcheck disable=SC2086
    "${lock[@]}" "$JAVA" -cp "$ORT_JAR" --enable-native-access=ALL-UNNAMED StepBench.java $t $shipped $dir/draft-fast.onnx
  done
}

# ---- the second edition's packaging (issue 18; NOTES.md "Packaging the second edition") ----
# One command, after the passage runs have finished:   tools/models/build.sh package-edition2
# Exports, quantises and checks both models, measures the pair on held-out passage prompts and writes
# $MODELS_OUT/kjv-target and $MODELS_OUT/kjv-draft with second-edition model cards. Settings (environment):
ED2_TARGET_CKPT=${ED2_TARGET_CKPT:-work/target-passages/ckpt.pt}
ED2_DRAFT_CKPT=${ED2_DRAFT_CKPT:-work/draft-passages/ckpt.pt}    # or work/draft256-passages/ckpt.pt, a distilled one
ED2_TARGET_LAYOUT=${ED2_TARGET_LAYOUT:-optimum}   # the target graph shipped as model.onnx: optimum | slots (both are checked)
ED2_DRAFT_LAYOUT=${ED2_DRAFT_LAYOUT:-slots}       # the draft's graphs (model.onnx, model_fp32.onnx): slots (the proposal steps
                                                  # of all assisted sequences in one batched call) | optimum (plain attention)
MODELS_OUT=${MODELS_OUT:-../../models}            # e.g. work/models-preview for a dry run
ED2_WORK=${ED2_WORK:-work/edition2}               # exports, check and pair JSONs
ED2_EVAL_LIMIT=${ED2_EVAL_LIMIT:-0}               # >0: only this many held-out verses / passages (a preview)
ED2_PAIR_N=${ED2_PAIR_N:-64}                      # passage prompts for greedy acceptance (all 64 of passages.txt)
ED2_PAIR_SAMPLED_N=${ED2_PAIR_SAMPLED_N:-64}      # ... and for acceptance at T 0.8
ED2_MAX_NEW=${ED2_MAX_NEW:-256}                   # tokens the target generates per prompt (or </s>)
ED2_SAMPLE_NEW=${ED2_SAMPLE_NEW:-160}             # tokens per greedy sample in the cards
ED2_ALLOW_UNFINISHED=${ED2_ALLOW_UNFINISHED:-0}   # 1: package checkpoints whose training has not finished (preview)
ED2_DRAFT_LABEL=${ED2_DRAFT_LABEL:-"kjv-draft (second edition, served)"}
ED2_TARGET_STATUS=${ED2_TARGET_STATUS:-"second edition: the target continued on passages at context 1024 from the first edition's weights."}
ED2_DRAFT_STATUS=${ED2_DRAFT_STATUS:-"second edition: the draft trained on passages at context 1024."}
PASSAGE_PROMPTS=../bench/prompts/passages.txt

# resumable: a step is skipped when its stamp file records the same checkpoints (path, size, mtime) and settings
ed2_step() {  # $1 = stamp file, $2 = key, then the command
  local stamp=$1 key=$2; shift 2
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then echo "up to date: $stamp"; return; fi
  rm -f "$stamp"
  "$@"
  mkdir -p "$(dirname "$stamp")"; echo "$key" > "$stamp"
}
ed2_to() { local f=$1; shift; "$@" > "$f.tmp"; mv "$f.tmp" "$f"; }  # $1 = output file, then the command
ckpt_key() { local c; for c in "$@"; do echo -n "$c $(stat -c %s-%Y "$c") "; done; }
ed2_export() {  # $1 = checkpoint, $2 = export dir, $3 = layout, $4 = attention, $5 = export dir whose reference data to reuse
  local ref=()
  [ -n "${5:-}" ] && ref=(--ref-from "$5")
  $NICE $PY export_onnx.py --ckpt "$1" --out "$2" --layout "$3" --attention "$4" --passages "${ref[@]}" \
    --eval-limit "$ED2_EVAL_LIMIT" --sample-new "$ED2_SAMPLE_NEW"
  $NICE $PY quantize.py --embedding "$2/model_fp32.onnx" "$2/model_int8.onnx"
}
ed2_check() {  # $1 = export dir, then OnnxCheck options; held-out ppl on passages, per-verse ppl as an extra
  local dir=$1; shift
  check --ref "$dir/ref.bin" --heldout "$dir/heldout_passages.bin" --heldout-extra "verses=$dir/heldout.bin" \
    --json "$dir/check.json" "$@" "$dir/model_fp32.onnx:1e-4" "$dir/model_int8.onnx"
}
# the target: both layouts exported, quantised and checked; int8 graphs must be step-invariant to the bit, the
# slots one also batch-invariant (OnnxCheck fails otherwise). A stage of its own too (edition2-target), so that it
# can run while the drafts still train.
ed2_target() {
  local t=$ED2_WORK/target tk
  tk="$(ckpt_key "$ED2_TARGET_CKPT") limit=$ED2_EVAL_LIMIT new=$ED2_SAMPLE_NEW"
  ed2_step $t/export/.done "$tk" ed2_export "$ED2_TARGET_CKPT" $t/export optimum step-invariant
  ed2_step $t/export-slots/.done "$tk" ed2_export "$ED2_TARGET_CKPT" $t/export-slots slots step-invariant $t/export
  ed2_step $t/export/.checked "$tk" ed2_check $t/export
  ed2_step $t/export-slots/.checked "$tk" ed2_check $t/export-slots
}
stage_edition2-target() {
  $NICE $PY tokenizer.py export verify
  ed2_target
}
stage_package-edition2() {
  local t=$ED2_WORK/target d=$ED2_WORK/draft pair=$ED2_WORK/pair c l
  for l in "$ED2_TARGET_LAYOUT" "$ED2_DRAFT_LAYOUT"; do
    [ "$l" = optimum ] || [ "$l" = slots ] || { echo "ED2_TARGET_LAYOUT / ED2_DRAFT_LAYOUT: optimum or slots, not '$l'" >&2; return 1; }
  done
  for c in "$ED2_TARGET_CKPT" "$ED2_DRAFT_CKPT"; do
    [ -f "$c" ] || { echo "missing checkpoint $c" >&2; return 1; }
    # an unfinished run (ckpt "done" false) is packaged only on request: the cards would describe a model mid-schedule
    $NICE $PY -c 'import sys, torch; ck = torch.load(sys.argv[1], map_location="cpu"); sys.exit(0 if ck.get("done") else 3)' "$c" \
      || [ "$ED2_ALLOW_UNFINISHED" = 1 ] || { echo "$c: training not finished (ED2_ALLOW_UNFINISHED=1 to package it anyway)" >&2; return 1; }
  done
  # tokenizer files from the committed sentencepiece model: tokenizer.json must be the first edition's byte for byte
  # (the models were trained on it), tokenizer_config.json carries the context and the passage chat template
  $NICE $PY tokenizer.py export verify
  cmp work/tok/tokenizer.json ../../models/kjv-target/tokenizer.json
  $PY -c 'import json, sys; c = json.load(open("work/tok/tokenizer_config.json"))
assert c["model_max_length"] == 1024 and "\\n" in c["chat_template"], c["model_max_length"]' \
    || { echo "work/tok/tokenizer_config.json: not the second edition's (model_max_length 1024 + passage chat template)" >&2; return 1; }
  ed2_target
  local dk
  dk="$(ckpt_key "$ED2_DRAFT_CKPT") limit=$ED2_EVAL_LIMIT new=$ED2_SAMPLE_NEW"
  # the draft, fp32 shipped as well: in the slots layout (always the row-wise attention, so invariant like the target's),
  # or in the Optimum layout with the plain attention (faster alone; its proposals need not be reproducible)
  local dx=$d/export
  if [ "$ED2_DRAFT_LAYOUT" = slots ]; then
    dx=$d/export-slots
    ed2_step $dx/.done "$dk" ed2_export "$ED2_DRAFT_CKPT" $dx slots step-invariant
    ed2_step $dx/.checked "$dk" ed2_check $dx
  else
    ed2_step $dx/.done "$dk" ed2_export "$ED2_DRAFT_CKPT" $dx optimum plain
    ed2_step $dx/.checked "$dk" ed2_check $dx --step-variance-ok
  fi
  # the pair on held-out passage prompts at context 1024
  mkdir -p $pair
  local pk
  pk="$(ckpt_key "$ED2_TARGET_CKPT" "$ED2_DRAFT_CKPT") max_new=$ED2_MAX_NEW label=$ED2_DRAFT_LABEL"
  ed2_step $pair/.greedy "$pk n=$ED2_PAIR_N" ed2_to $pair/greedy.json $NICE $PY accept.py --draft "$ED2_DRAFT_CKPT" \
    --target "$ED2_TARGET_CKPT" --prompts $PASSAGE_PROMPTS --n "$ED2_PAIR_N" --max-new "$ED2_MAX_NEW" --k 5 --label "$ED2_DRAFT_LABEL"
  ed2_step $pair/.t08 "$pk n=$ED2_PAIR_SAMPLED_N" ed2_to $pair/t08.json $NICE $PY accept_sampled.py --draft "$ED2_DRAFT_CKPT" \
    --target "$ED2_TARGET_CKPT" --prompts $PASSAGE_PROMPTS --n "$ED2_PAIR_SAMPLED_N" --max-new "$ED2_MAX_NEW" \
    --draft-temps 0.8 --label "$ED2_DRAFT_LABEL"
  cat $pair/greedy.json $pair/t08.json
  local shipped=$t/export other=$t/export-slots
  [ "$ED2_TARGET_LAYOUT" = slots ] && shipped=$t/export-slots other=$t/export
  local common=(--edition 2 --models-dir "$MODELS_OUT" --onnx model_int8.onnx --pair $pair/greedy.json --pair-sampled $pair/t08.json)
  $PY package.py "${common[@]}" --name kjv-target --export $shipped --other-layout $other/check.json \
    --first-edition work/target-v1/from_onnx.json --status "$ED2_TARGET_STATUS"
  $PY package.py "${common[@]}" --name kjv-draft --export $dx --extra model_fp32.onnx \
    --first-edition work/draft-v1/from_onnx.json --status "$ED2_DRAFT_STATUS"
  # models/ travels with the repository: both models together must stay under 60 MB
  local total
  total=$(cat "$MODELS_OUT"/kjv-target/* "$MODELS_OUT"/kjv-draft/* | wc -c)
  ls -l "$MODELS_OUT"/kjv-target "$MODELS_OUT"/kjv-draft
  echo "kjv-target + kjv-draft: $total bytes"
  [ "$total" -lt 60000000 ] || { echo "over 60 MB" >&2; return 1; }
}

# ONNX Runtime's own graphs (issue 17): model_optimized.onnx beside each model's model.onnx in $MODELS_OUT, rebuilt
# from it by fuse_graph.py with ONNX Runtime's contrib operators (the ONNX Runtime engine prefers it; OpenVINO and the
# reference engine cannot read it and run model.onnx). Each is checked against model.onnx (OnnxCheck: step, batch and
# placement invariance must be 0, else this stops; passage and per-verse ppl; greedy agreement), timed (StepBench,
# under /work/bench.lock when it exists) and recorded in MODEL_CARD.md and SHA256SUMS (optimized_card.py). Run it
# after package-edition2, which rewrites the cards. The target's int4 (MatMulNBits 4 bits, block 32; block 64 is not
# batch-invariant) was chosen by measurement (NOTES.md "ONNX Runtime's own graphs"); the draft stays 8-bit.
OPT_COMMON="--skip-norm --rotary contrib --fused-scores --attention mixed --scatter nd"
OPT_TARGET=${OPT_TARGET:-"--matmul nbits4 --block 32 $OPT_COMMON"}
OPT_DRAFT=${OPT_DRAFT:-"--matmul nbits8 --block 64 $OPT_COMMON"}
stage_optimized() {
  local dir=work/optimized m src opts t
  mkdir -p $dir
  [ -f work/corpus/heldout_meta.tsv ] && [ -f work/tok/kjv4096.model ] || stage_data
  [ -f $dir/heldout_passages.bin ] || $PY fuse_graph.py --check-data --out $dir
  [ -f $dir/prompts.bin ] || $PY slots_target.py prompts $dir/prompts.bin 20 > /dev/null
  local lock=(); [ -e /work/bench.lock ] && lock=(flock /work/bench.lock)
  for m in kjv-target kjv-draft; do
    src=$MODELS_OUT/$m opts=$OPT_TARGET
    [ $m = kjv-draft ] && opts=$OPT_DRAFT
    # shellcheck disable=SC2086
    $PY fuse_graph.py --src $src/model.onnx --out $dir/$m.onnx $opts
    check --ref $dir/ref.bin --heldout $dir/heldout_passages.bin --heldout-extra verses=$dir/heldout.bin \
      --prompts $dir/prompts.bin --max-new 40 --greedy-differ-ok --json $dir/$m.check.json $src/model.onnx $dir/$m.onnx
    : > $dir/$m.bench.txt
    for t in "--tokens 1" "--tokens 6" "--batch 8 --tokens 1"; do
      # shellcheck disable=SC2086
      "${lock[@]}" "$JAVA" -cp "$ORT_JAR" --enable-native-access=ALL-UNNAMED StepBench.java $t $src/model.onnx $dir/$m.onnx \
        | tee -a $dir/$m.bench.txt
    done
    cp $dir/$m.onnx $src/model_optimized.onnx
    $PY optimized_card.py --model-dir $src --check $dir/$m.check.json --bench $dir/$m.bench.txt --options "$opts"
  done
  local total
  total=$(cat "$MODELS_OUT"/kjv-target/* "$MODELS_OUT"/kjv-draft/* | wc -c)
  echo "kjv-target + kjv-draft: $total bytes"
  [ "$total" -lt 60000000 ] || { echo "over 60 MB" >&2; return 1; }
}

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(data draft target distill onpolicy pair)
[ -f work/tok/tokenizer.json ] || [[ " ${stages[*]} " == *" data "* ]] || stage_data
for s in "${stages[@]}"; do "stage_$s"; done
