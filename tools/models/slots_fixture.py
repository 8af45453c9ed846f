#!/usr/bin/python3
"""A tiny random-initialised Llama in the "slots" KV layout, for the Java engine tests
(src/test/resources/models/slots-tiny/). Deterministic (seeded); no training, no corpus needed.

Written to <out>/:
  model.onnx        int8 (quantize.py --embedding), the graph the engine serves
  model_fp32.onnx   the fp32 export
  config.json, generation_config.json, tokenizer.json, tokenizer_config.json (the KJV tokenizer of the
                    bundled models, copied from models/kjv-draft)
  reference.json    torch fp32 greedy continuations of a few prompts (see REFERENCE_DOC below)
and to <work>/ (not committed): ckpt.pt, ref.bin (torch logits for OnnxCheck.java).

  slots_fixture.py --out ../../src/test/resources/models/slots-tiny --work work/slots-tiny
"""
import argparse, json, os, shutil, struct, sys
import numpy as np
import torch
import sentencepiece as spm

torch.set_num_threads(2)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import Config, Llama  # noqa: E402
from export_onnx import export_slots, greedy  # noqa: E402
from quantize import quantize  # noqa: E402

# small enough to commit: the tied 4096 x 24 embedding is stored twice in the fp32 graph (Gather table and
# the transposed lm_head), 0.8 MB; grouped-query attention (4 heads, 2 kv heads) as in the real models
CONFIG = dict(vocab_size=4096, hidden_size=24, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              intermediate_size=64)
SEED = 20261130
PROMPTS = ["And he said unto them,", "In the beginning God created", "Blessed are the",
           "And it came to pass, when the king heard the words of the law, that he rent his clothes."]
MAX_NEW = 16
REFERENCE_DOC = ("Greedy continuations computed in torch (fp32) from the same weights as the graphs: "
                 "prompt_ids = [<s>] + the tokenizer's encoding of prompt, greedy_ids = up to max_new tokens "
                 "(stopping after EOS id 2 if produced). min_top2_gap = smallest gap between the best and "
                 "second-best logit over the greedy steps (how robust the argmax is to the int8 graph's "
                 "rounding). tools/models/build.sh slots-tiny checks with ONNX Runtime that both graphs (fp32 "
                 "and int8) give these greedy ids for every prompt.")


def build_model():
    torch.manual_seed(SEED)
    m = Llama(Config(**CONFIG))
    # A model initialised like a training run (std 0.02) is nearly the identity plus a bigram and
    # its greedy output barely depends on the context. Larger weights make attention and the MLP matter
    # (continuations depend on the whole prompt) and the logits decisive (clear top-1 gaps).
    with torch.no_grad():
        for n, p in m.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 1.0 if "embed" in n else 1.5 / p.shape[1] ** 0.5)
    m.eval()
    return m


@torch.no_grad()
def greedy_with_gap(model, ids, n):
    out = list(ids)
    logits, past = model(torch.tensor([out]))
    gap = float("inf")
    gen = []
    for _ in range(n):
        top = torch.topk(logits[0, -1], 2).values
        gap = min(gap, float(top[0] - top[1]))
        t = int(logits[0, -1].argmax())
        gen.append(t)
        if t == 2:
            break
        logits, past = model(torch.tensor([[t]]), past=past)
    return gen, gap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.work, exist_ok=True)
    model = build_model()
    c = model.config
    torch.save({"config": CONFIG, "model": model.state_dict(), "step": 0, "elapsed": 0.0, "args": {}},
               os.path.join(a.work, "ckpt.pt"))
    fp32 = os.path.join(a.out, "model_fp32.onnx")
    export_slots(model, fp32)
    quantize(fp32, os.path.join(a.out, "model.onnx"), embedding=True)
    json.dump(c.hf_config(), open(os.path.join(a.out, "config.json"), "w"), indent=2)
    json.dump({"bos_token_id": 1, "eos_token_id": 2}, open(os.path.join(a.out, "generation_config.json"), "w"), indent=2)
    bundled = os.path.join(HERE, "..", "..", "models", "kjv-draft")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(bundled, f), os.path.join(a.out, f))

    sp = spm.SentencePieceProcessor(model_file=os.path.join(HERE, "kjv4096.model"))
    refs = []
    for p in PROMPTS:
        ids = [1] + sp.encode(p)
        gen, gap = greedy_with_gap(model, ids, MAX_NEW)
        refs.append({"prompt": p, "prompt_ids": ids, "greedy_ids": gen, "greedy_text": sp.decode([t for t in gen if t > 2]),
                     "min_top2_gap": round(gap, 4)})
    ref = {"doc": REFERENCE_DOC, "kv_layout": "slots", "seed": SEED, "max_new": MAX_NEW, "prompts": refs}
    json.dump(ref, open(os.path.join(a.out, "reference.json"), "w"), indent=2)

    # OnnxCheck's reference (not committed: 0.5 MB of logits): the longest prompt followed by its continuation
    seq = (refs[3]["prompt_ids"] + refs[3]["greedy_ids"])[:40]
    with torch.no_grad():
        logits, _ = model(torch.tensor([seq]))
    # ref.bin checks the greedy continuation of the first prompt, ref-p<i>.bin of prompt i (build.sh slots-tiny)
    for i, r in enumerate(refs):
        prompt, gen = r["prompt_ids"], r["greedy_ids"]
        with open(os.path.join(a.work, "ref.bin" if i == 0 else "ref-p%d.bin" % i), "wb") as f:
            f.write(struct.pack("<iii", 0x4D444E54, len(seq), c.vocab_size))
            f.write(np.array(seq, dtype="<i8").tobytes())
            f.write(logits[0].numpy().astype("<f4").tobytes())
            f.write(struct.pack("<i", len(prompt))); f.write(np.array(prompt, dtype="<i8").tobytes())
            f.write(struct.pack("<i", len(gen))); f.write(np.array(gen, dtype="<i8").tobytes())
    for r in refs:
        print("%-40s gap %.3f -> %s" % (r["prompt"][:40], r["min_top2_gap"], r["greedy_text"]))
    for f in sorted(os.listdir(a.out)):
        print("%10d %s" % (os.path.getsize(os.path.join(a.out, f)), f))


if __name__ == "__main__":
    main()
