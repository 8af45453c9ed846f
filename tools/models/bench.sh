#!/usr/bin/env bash
# Training throughput (tokens/s, fp32, 2 threads, seq 256) for the candidate sizes; ~1 min each.
# Run on an otherwise idle machine: tools/models/bench.sh > work/logs/bench.log
set -euo pipefail
cd "$(dirname "$0")"
PY=/usr/bin/python3
S=${BENCH_SECONDS:-50}
for spec in "draft 32" "t-384x8 16" "t-512x6 16" "t-512x8 16" "t-512x8 8"; do
  set -- $spec
  nice -n 15 $PY train.py --bench $S --preset $1 --batch $2 | grep BENCH
done
nice -n 15 $PY train.py --bench $S --preset t-512x8 --batch 16 --untied | grep BENCH
# distillation cost: draft student with a (randomly initialised) t-512x8 teacher forward per batch
$PY -c "
import torch, sys; sys.path.insert(0, '.')
from model import Config, Llama
c = Config.preset('t-512x8'); m = Llama(c)
torch.save({'model': m.state_dict(), 'config': c.__dict__}, 'work/bench_teacher.pt')"
nice -n 15 $PY train.py --bench $S --preset draft --batch 16 --teacher work/bench_teacher.pt | grep BENCH
