#!/usr/bin/env bash
# Converts the bundled pair (models/kjv-target, models/kjv-draft) to GGUF inside the sid chroot:
# onnx_to_gguf.py writes F32 (dequantised from the int8 ONNX), llama-quantize makes Q8_0 from it, and Q4_0 of the
# target (the peer of Tandem's int4 model_optimized.onnx: 4 bits per block of 32, re-quantised from the same weights).
# Output: $PEERS_CHROOT/peers/{kjv-target,kjv-draft}-{f32,q8_0}.gguf, kjv-target-q4_0.gguf (in the chroot: /peers/...).
#
#   tools/bench/peers/convert.sh            (after setup-chroot.sh; needs root for chroot)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
peers_mount
for m in kjv-target kjv-draft; do
  echo "== $m"
  in_chroot python3 /repo/tools/bench/peers/onnx_to_gguf.py --model-dir "/repo/models/$m" \
    --sp-model /repo/tools/models/kjv4096.model --out "/peers/$m-f32.gguf"
  in_chroot llama-quantize "/peers/$m-f32.gguf" "/peers/$m-q8_0.gguf" Q8_0 >"$PEERS_OUT/$m-quantize.log" 2>&1 \
    || { cat "$PEERS_OUT/$m-quantize.log" >&2; exit 1; }
  tail -n 2 "$PEERS_OUT/$m-quantize.log"
done
in_chroot llama-quantize /peers/kjv-target-f32.gguf /peers/kjv-target-q4_0.gguf Q4_0 >"$PEERS_OUT/kjv-target-quantize-q4.log" 2>&1 \
  || { cat "$PEERS_OUT/kjv-target-quantize-q4.log" >&2; exit 1; }
tail -n 2 "$PEERS_OUT/kjv-target-quantize-q4.log"
ls -l "$PEERS_OUT"/*.gguf
