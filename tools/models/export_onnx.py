#!/usr/bin/python3
"""Export a checkpoint to the HF Optimum ONNX layout (text-generation-with-past), opset 14, fp32,
or (--layout slots) to the "slots" KV layout (/work/notes/slots.md: past [B,kv_heads,W,head_dim] updated
in place at position_ids, no attention_mask; model metadata tandem.kv_layout=slots),
plus config.json / generation_config.json, and write reference data for OnnxCheck.java:

  <out>/model_fp32.onnx, config.json, generation_config.json
  <out>/ref.bin      torch logits of one held-out token sequence + a greedy continuation
  <out>/heldout.bin  the held-out verses as documents <s> ... </s> (for perplexity)
  <out>/heldout_passages.bin  (--passages, second edition) the held-out passages, likewise
  <out>/torch.json   torch held-out perplexity, parameter count, greedy samples

  export_onnx.py --ckpt work/draft/ckpt.pt --out work/draft/export
"""
import argparse, json, os, shutil, struct, sys
import numpy as np
import torch
import onnx

torch.set_num_threads(2)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Attention, load_checkpoint  # noqa: E402
import data  # noqa: E402
from train import eval_ppl  # noqa: E402


class OnnxWrapper(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, presents = self.m(input_ids, attention_mask, position_ids, past)
        out = [logits]
        for k, v in presents:
            out += [k, v]
        return tuple(out)


class SlotsWrapper(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, presents = self.m(input_ids, None, position_ids, past, slots=True)
        out = [logits]
        for k, v in presents:
            out += [k, v]
        return tuple(out)


KV_LAYOUT_KEY = "tandem.kv_layout"


def export_slots(model, path):
    """The slots layout: inputs input_ids, position_ids [B,T], past_key_values.{i}.key|value [B,kvh,W,hd];
    outputs logits, present.{i}.key|value [B,kvh,W,hd] (the past with the new tokens written at their
    positions). Always with the step-invariant (row-wise) attention, over all W keys without padding (the
    contract requires W % 64 == 0) and with K^T written so that ONNX Runtime fuses it into the MatMul
    (FusedMatMul transB: no transposed copy of the cache per step; model.Attention.forward)."""
    c = model.config
    L, kvh, hd = c.num_hidden_layers, c.num_key_value_heads, c.head_dim
    b, s, w = 2, 3, 64
    ids = torch.randint(3, c.vocab_size, (b, s))
    pos = torch.tensor([[4, 5, 6], [10, 11, 12]])
    past = [torch.randn(b, kvh, w, hd) for _ in range(2 * L)]
    in_names = ["input_ids", "position_ids"]
    out_names = ["logits"]
    dyn = {"input_ids": {0: "batch_size", 1: "sequence_length"},
           "position_ids": {0: "batch_size", 1: "sequence_length"},
           "logits": {0: "batch_size", 1: "sequence_length"}}
    for i in range(L):
        for kv in ("key", "value"):
            n = "past_key_values.%d.%s" % (i, kv)
            in_names.append(n); dyn[n] = {0: "batch_size", 2: "cache_width"}
            n = "present.%d.%s" % (i, kv)
            out_names.append(n); dyn[n] = {0: "batch_size", 2: "cache_width"}
    Attention.row_wise = True
    try:
        with torch.no_grad():
            torch.onnx.export(SlotsWrapper(model), (ids, pos, *past), path, opset_version=14,
                              input_names=in_names, output_names=out_names, dynamic_axes=dyn,
                              do_constant_folding=True)
    finally:
        Attention.row_wise = False
    m = onnx.load(path)
    onnx.helper.set_model_props(m, {KV_LAYOUT_KEY: "slots"})
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return m


def export(model, path, step_invariant=True):
    c = model.config
    L, kvh, hd = c.num_hidden_layers, c.num_key_value_heads, c.head_dim
    b, s, p = 2, 3, 4
    ids = torch.randint(3, c.vocab_size, (b, s))
    am = torch.ones(b, p + s, dtype=torch.long)
    pos = (torch.arange(s) + p)[None].expand(b, s).contiguous()
    past = [torch.randn(b, kvh, p, hd) for _ in range(2 * L)]
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["logits"]
    dyn = {"input_ids": {0: "batch_size", 1: "sequence_length"},
           "attention_mask": {0: "batch_size", 1: "past_sequence_length + sequence_length"},
           "position_ids": {0: "batch_size", 1: "sequence_length"},
           "logits": {0: "batch_size", 1: "sequence_length"}}
    for i in range(L):
        for kv in ("key", "value"):
            n = "past_key_values.%d.%s" % (i, kv)
            in_names.append(n); dyn[n] = {0: "batch_size", 2: "past_sequence_length"}
            n = "present.%d.%s" % (i, kv)
            out_names.append(n); dyn[n] = {0: "batch_size", 2: "past_sequence_length + sequence_length"}
    # see model.Attention: a token's numbers must not depend on how many tokens the call carries
    Attention.row_wise = step_invariant
    try:
        with torch.no_grad():
            torch.onnx.export(OnnxWrapper(model), (ids, am, pos, *past), path, opset_version=14,
                              input_names=in_names, output_names=out_names, dynamic_axes=dyn,
                              do_constant_folding=True)
    finally:
        Attention.row_wise = False
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m


@torch.no_grad()
def greedy(model, ids, n):
    out = list(ids)
    x = torch.tensor([out])
    logits, past = model(x)
    for _ in range(n):
        t = int(logits[0, -1].argmax())
        out.append(t)
        if t == data.EOS:
            break
        logits, past = model(torch.tensor([[t]]), past=past)
    return out[len(ids):]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--attention", choices=["step-invariant", "plain"], default="step-invariant",
                    help="step-invariant (the target: verification must equal decoding to the bit) or plain "
                         "(faster; fine for a draft, whose proposals need not be reproducible)")
    ap.add_argument("--layout", choices=["optimum", "slots"], default="optimum",
                    help="KV cache layout: optimum (past grows by concatenation, attention_mask) or slots "
                         "(/work/notes/slots.md; batch-invariant; always step-invariant attention)")
    ap.add_argument("--passages", action="store_true",
                    help="second edition: reference data from held-out passages (heldout_passages.bin, passage ppl, "
                         "greedy samples from tools/bench/prompts/passages.txt) besides the per-verse ones")
    ap.add_argument("--ref-len", type=int, default=320, help="--passages: tokens of the reference sequence")
    ap.add_argument("--samples", type=int, default=5, help="--passages: greedy samples for the model card")
    ap.add_argument("--sample-new", type=int, default=160, help="--passages: tokens per greedy sample (or </s>)")
    ap.add_argument("--ref-from", default=None,
                    help="another export dir of the same checkpoint: copy its reference data and torch.json instead of "
                         "recomputing them (the torch numbers do not depend on the ONNX layout)")
    ap.add_argument("--eval-limit", type=int, default=0,
                    help="evaluate only this many evenly spread held-out verses and passages (a quick preview; 0 = all)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    model, ck = load_checkpoint(a.ckpt)
    c = model.config
    if a.layout == "slots":
        export_slots(model, os.path.join(a.out, "model_fp32.onnx"))
    else:
        export(model, os.path.join(a.out, "model_fp32.onnx"), a.attention == "step-invariant")
    json.dump(c.hf_config(), open(os.path.join(a.out, "config.json"), "w"), indent=2)
    json.dump({"bos_token_id": 1, "eos_token_id": 2}, open(os.path.join(a.out, "generation_config.json"), "w"), indent=2)
    if a.ref_from:
        for f in ("ref.bin", "heldout.bin", "heldout_passages.bin"):
            if os.path.exists(os.path.join(a.ref_from, f)):
                shutil.copyfile(os.path.join(a.ref_from, f), os.path.join(a.out, f))
        info = json.load(open(os.path.join(a.ref_from, "torch.json")))
        if (info.get("ckpt"), info["train_step"]) != (a.ckpt, ck["step"]):
            raise SystemExit("--ref-from %s was made from %s step %s, not %s step %d"
                             % (a.ref_from, info.get("ckpt"), info["train_step"], a.ckpt, ck["step"]))
        info.update({"layout": a.layout, "attention": "step-invariant" if a.layout == "slots" else a.attention})
        json.dump(info, open(os.path.join(a.out, "torch.json"), "w"), indent=2)
        print("reference data and torch.json from %s" % a.ref_from)
        return

    sp = data.sp()
    _, _, held = data.load("heldout")
    if a.eval_limit:  # a quick preview: an evenly spread subset of the held-out verses and passages
        held = held[::max(1, len(held) // a.eval_limit)][:a.eval_limit]
    if a.passages:
        # second edition: the reference sequence is the start of a held-out passage (verses joined by "\n",
        # positions past the first edition's 256), the greedy reference continues a passage prompt
        _, _, _, passages = data.load_passages("heldout", c.max_position_embeddings)
        if a.eval_limit:
            passages = passages[::max(1, len(passages) // a.eval_limit)][:a.eval_limit]
        seq = [data.BOS] + next(p for p in passages if len(p) >= a.ref_len)[:a.ref_len - 1]
        texts, pids = data.file_prompts(data.PASSAGE_PROMPTS)
        prompt = pids[0]
    else:
        # reference sequence: two consecutive held-out verses as <s> v1 </s> <s> v2 </s>, trimmed to 64 tokens
        seq = ([data.BOS] + held[10] + [data.EOS] + [data.BOS] + held[11] + [data.EOS])[:64]
        prompt = [data.BOS] + sp.encode("And he said unto them,")
    with torch.no_grad():
        logits, _ = model(torch.tensor([seq]))
    gen = greedy(model, prompt, 40)
    with open(os.path.join(a.out, "ref.bin"), "wb") as f:
        f.write(struct.pack("<iii", 0x4D444E54, len(seq), c.vocab_size))
        f.write(np.array(seq, dtype="<i8").tobytes())
        f.write(logits[0].numpy().astype("<f4").tobytes())
        f.write(struct.pack("<i", len(prompt))); f.write(np.array(prompt, dtype="<i8").tobytes())
        f.write(struct.pack("<i", len(gen))); f.write(np.array(gen, dtype="<i8").tobytes())

    def write_docs(name, docs):  # documents <s> ... </s> for OnnxCheck's perplexity
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(struct.pack("<i", len(docs)))
            for d in docs:
                doc = [data.BOS] + d + [data.EOS]
                f.write(struct.pack("<i", len(doc))); f.write(np.array(doc, dtype="<i8").tobytes())
    write_docs("heldout.bin", held)
    ppl = eval_ppl(model, held)
    samples = []
    meta = [l.split("\t") for l in open(os.path.join(data.WORK, "corpus", "heldout_meta.tsv")).read().splitlines()]
    if a.passages:
        write_docs("heldout_passages.bin", passages)
        passage_ppl = eval_ppl(model, passages, batch=4)
        # greedy samples from passage prompts (ending inside a verse): do they finish the verse and go on
        # with the next ones ("\n" between verses), and how many verse breaks do they write?
        for i in range(a.samples):
            k = i * len(texts) // a.samples
            first = texts[k].split("\n")[0]
            where = next(("%s %s:%s" % tuple(m[:3]) for m in meta if first.startswith(m[3]) or m[3].startswith(first)), "?")
            g = greedy(model, pids[k], a.sample_new)
            body = [t for t in g if t > 2]
            samples.append({"ref": where, "prompt": texts[k], "greedy": sp.decode(body),
                            "ended_with_eos": bool(g and g[-1] == data.EOS), "new_tokens": len(g),
                            "verse_breaks": body.count(data.NL)})
    else:
        for i in (0, 90, 300, 400, 500):
            words = meta[i][3].split()
            pr = " ".join(words[:max(3, len(words) // 3)])
            g = greedy(model, [data.BOS] + sp.encode(pr), 60)
            samples.append({"ref": "%s %s:%s" % tuple(meta[i][:3]), "prompt": pr,
                            "greedy": sp.decode([t for t in g if t > 2]), "ended_with_eos": bool(g and g[-1] == data.EOS)})
    info = {"ckpt": a.ckpt, "params": model.num_params(), "heldout_ppl_torch": ppl, "heldout_verses": len(held),
            "train_step": ck["step"], "total_steps": ck.get("total_steps"), "train_done": bool(ck.get("done")),
            "train_minutes": ck["elapsed"] / 60, "train_tokens": ck["step"] * ck["args"]["batch"] * ck["args"]["seq"],
            "history": ck.get("history", []), "args": ck["args"], "eval_limit": a.eval_limit, "layout": a.layout, "attention": a.attention,
            "greedy_ref_prompt": sp.decode(prompt[1:]), "greedy_ref": sp.decode([t for t in gen if t > 2]),
            "samples": samples}
    if a.passages:
        info.update({"heldout_passage_ppl_torch": passage_ppl, "heldout_passages": len(passages),
                     "heldout_passage_tokens": sum(len(p) + 1 for p in passages),
                     "heldout_verse_tokens": sum(len(v) + 1 for v in held), "ref_len": len(seq)})
    json.dump(info, open(os.path.join(a.out, "torch.json"), "w"), indent=2)
    print(json.dumps({k: info[k] for k in ("params", "heldout_ppl_torch", "heldout_passage_ppl_torch", "train_tokens",
                                           "train_minutes") if k in info}))
    for s in samples:
        print("[%s] %s || %s" % (s["ref"], s["prompt"], s["greedy"]))


if __name__ == "__main__":
    main()
