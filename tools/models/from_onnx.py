#!/usr/bin/python3
"""Rebuild a torch checkpoint (the format train.py writes and `--init` / load_checkpoint read) from a
packaged ONNX graph, for when the fp32 training checkpoint is gone (a fresh machine): the start of the
second edition's context extension (NOTES.md "Passages").

- fp32 graph (models/kjv-draft/model_fp32.onnx): MatMul weight initializers are W = weight.T.
- int8 graph (models/kjv-target/model.onnx, quantize.py): MatMulInteger with uint8 W [K, N] plus a
  per-column scale and zero point -> weight.T = (W - zp) * scale; the uint8 per-row embedding likewise
  (E = (Eq - zp) * scale). The tied lm_head (logits MatMul) and the embedding are the same matrix
  quantised the same way (per vocabulary row), so they must dequantise to the same values (checked).
Each linear layer is found by the name of the MatMul output it produces ("/m/layers.3/mlp/up_proj/
MatMul_output_0" -> model.layers.3.mlp.up_proj.weight); the norms keep their parameter names.

Then checks: held-out per-verse perplexity (all 589 verses) and greedy continuations of the model card's
prompts, printed next to the card's figures, and writes <out>/ckpt.pt (+ from_onnx.json with the numbers).

  from_onnx.py --onnx ../../models/kjv-target/model.onnx --out work/target-v1 [--max-pos 1024]
"""
import argparse, json, os, re, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, Llama  # noqa: E402
import data  # noqa: E402
from train import eval_ppl  # noqa: E402
from export_onnx import greedy  # noqa: E402
from onnx_weights import read_weights  # noqa: E402


def config_from(sd, max_pos):
    hidden = sd["model.embed_tokens.weight"].shape[1]
    layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("model.layers."))
    kv_dim = sd["model.layers.0.self_attn.k_proj.weight"].shape[0]
    # head dim is not recoverable from the shapes alone: every preset uses 4x/2x heads for kv as below
    for name, p in __import__("model").PRESETS.items():
        if p["hidden_size"] == hidden and p["num_hidden_layers"] == layers \
                and p["num_key_value_heads"] * hidden // p["num_attention_heads"] == kv_dim \
                and p["intermediate_size"] == sd["model.layers.0.mlp.up_proj.weight"].shape[0]:
            return name, Config.preset(name, max_position_embeddings=max_pos, tie_word_embeddings=True)
    raise SystemExit("no preset matches the graph's shapes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-pos", type=int, default=1024, help="max_position_embeddings of the rebuilt config "
                    "(rotary, no learned positions: only the config changes)")
    ap.add_argument("--card", default=None, help="MODEL_CARD.md to compare with (default: next to --onnx)")
    a = ap.parse_args()
    sd = read_weights(a.onnx)
    lm = sd.pop("lm_head.weight")
    diff = float(np.abs(lm - sd["model.embed_tokens.weight"]).max())
    print("tied check: max |lm_head - embedding| = %.3g" % diff)
    preset, cfg = config_from(sd, a.max_pos)
    model = Llama(cfg)
    state = model.state_dict()
    missing = sorted(set(state) - set(sd) - {"lm_head.weight"})
    extra = sorted(set(sd) - set(state))
    if missing or extra:
        raise SystemExit("missing %s extra %s" % (missing, extra))
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, strict=False)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model.eval()

    _, _, held = data.load("heldout")
    ppl = eval_ppl(model, held)
    _, _, _, passages = data.load_passages("heldout", a.max_pos)
    pppl = eval_ppl(model, passages, batch=4)
    print("%s (%s, %d params): held-out per-verse ppl %.3f (589 verses); held-out passage ppl %.3f (%d passages)"
          % (a.onnx, preset, model.num_params(), ppl, pppl, len(passages)))
    card_path = a.card or os.path.join(os.path.dirname(a.onnx), "MODEL_CARD.md")
    card = open(card_path).read() if os.path.exists(card_path) else ""
    sp = data.sp()
    samples, same = [], 0
    for m in re.finditer(r"^- \*(.+?)\* — \*\*(.+?)\*\* (.*)$", card, re.M):
        ref, prompt, text = m.group(1), m.group(2), m.group(3)
        g = greedy(model, [data.BOS] + sp.encode(prompt), 60)
        ours = sp.decode([t for t in g if t > 2])
        # the card truncates looping samples with "…"; compare the part it shows
        shown = text[:-2].rstrip() if text.endswith("…") else text
        ok = ours.startswith(shown) if text.endswith("…") else ours == shown
        same += ok
        samples.append({"ref": ref, "prompt": prompt, "card": text, "rebuilt": ours, "same": ok})
        print("[%s] %s\n  card:    %s\n  rebuilt: %s" % ("same" if ok else "DIFF", ref, text, ours))
    os.makedirs(a.out, exist_ok=True)
    torch.save({"model": model.state_dict(), "opt": None, "config": cfg.__dict__, "step": 0, "total_steps": 0,
                "elapsed": 0.0, "history": [], "done": True,
                "args": {"preset": preset, "batch": 0, "seq": a.max_pos, "from_onnx": os.path.abspath(a.onnx)}},
               os.path.join(a.out, "ckpt.pt"))
    json.dump({"onnx": a.onnx, "preset": preset, "params": model.num_params(), "tied_max_diff": diff,
               "heldout_ppl": ppl, "heldout_passage_ppl": pppl, "greedy_same_as_card": "%d/%d" % (same, len(samples)),
               "samples": samples}, open(os.path.join(a.out, "from_onnx.json"), "w"), indent=2)
    print("greedy samples equal to the card: %d/%d; wrote %s" % (same, len(samples), os.path.join(a.out, "ckpt.pt")))


if __name__ == "__main__":
    main()
