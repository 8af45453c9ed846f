#!/usr/bin/env bash
# Checks that llama.cpp runs the same model as Tandem (issue 17), before anything is timed:
# 1. token parity: llama-tokenize on the F32 GGUF against Tandem's /tokenize, every line of
#    tools/bench/prompts/*.txt, BOS included;
# 2. greedy agreement: Tandem's plain greedy ids (TGI /generate) against llama-server's (F32 and Q8_0), on the
#    held-out prompts, up to TOKENS tokens with EOS honoured: how many are equal, and at which token the
#    others part (int8 activations in Tandem's graph against float in llama.cpp move a close argmax now and then).
# Results: docs/bench/peers/greedy.csv and the printed tables (also in docs/bench/peers/check.md). No timing, so no lock is needed; llama-server
# runs on 1 thread here so that a busy machine slows the check down without the 2-thread collapse (100x).
#
#   tools/bench/peers/check.sh [TOKENS=64] [PROMPTS=64]   (after setup-chroot.sh, convert.sh and a Tandem build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
TOKENS=${1:-64}
COUNT=${2:-64}
PORT=${PEERS_PORT:-18231}
cd "$REPO"
renice -n 10 $$ >/dev/null  # not a timing run: yield the cores to any benchmark running meanwhile
mkdir -p docs/bench/peers
peers_mount
start_tandem "$PORT"
start_llama check-f32 $((PORT + 1)) -m /peers/kjv-target-f32.gguf -t 1 -c 1024 -np 1
start_llama check-q8 $((PORT + 2)) -m /peers/kjv-target-q8_0.gguf -t 1 -c 1024 -np 1
T=http://127.0.0.1:$PORT
{
python3 tools/bench/peers/peers.py parity "$PEERS_CHROOT" /peers/kjv-target-f32.gguf "$T" tools/bench/prompts/*.txt
python3 tools/bench/peers/peers.py greedy "$T" "F32=http://127.0.0.1:$((PORT + 1))" "Q8_0=http://127.0.0.1:$((PORT + 2))" \
  --tokens "$TOKENS" --count "$COUNT" --prompts tools/bench/prompts/heldout.txt --out docs/bench/peers/greedy.csv
} | tee docs/bench/peers/check.md
