#!/usr/bin/python3
"""Assemble models/<name>/ (or --models-dir DIR/<name>/): model.onnx (the served graph), config.json, generation_config.json,
tokenizer.json, tokenizer_config.json, MODEL_CARD.md, SHA256SUMS (sha256sum format, every other file, including
the external data files a graph names: they are copied beside it under the names it gives them).

  package.py --name kjv-draft --export work/draft/export --onnx model_int8.onnx \
             [--extra model_fp32.onnx] --status "..."
Reads <export>/torch.json (training facts, torch perplexity, samples) and <export>/check.json
(OnnxCheck.java results) to write the model card. --edition 2: the second edition's card (passages at context
1024: passage and per-verse ppl, passage samples, the pair on passage prompts, the shipped layout's interface;
build.sh package-edition2).
"""
import argparse, hashlib, json, os, shutil
from external_data import data_files

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--export", required=True)
    ap.add_argument("--onnx", default="model_int8.onnx", help="file in --export served as model.onnx")
    ap.add_argument("--extra", action="append", default=[], help="additional files from --export to ship as-is")
    ap.add_argument("--status", required=True)
    ap.add_argument("--role", default="")
    ap.add_argument("--pair", action="append", default=[],
                    help="accept.py result (JSON) of a draft against the target, for the card's pair section")
    ap.add_argument("--pair-sampled", action="append", default=[],
                    help="accept_sampled.py result (JSON): expected acceptance of speculative sampling")
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "models"),
                    help="where <name>/ is written (a preview: e.g. tools/models/work/models-preview)")
    ap.add_argument("--edition", type=int, default=1, help="2: the second edition's card (passages, context 1024)")
    ap.add_argument("--first-edition", default=None,
                    help="edition 2: from_onnx.py's JSON of the first edition rebuilt from its ONNX (its per-verse and "
                         "passage ppl, for comparison)")
    ap.add_argument("--other-layout", default=None,
                    help="edition 2: the check.json of the other ONNX layout exported from the same checkpoint "
                         "(checked, not shipped)")
    a = ap.parse_args()
    ex = os.path.join(HERE, a.export) if not os.path.isabs(a.export) else a.export
    out = os.path.join(a.models_dir, a.name)
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.remove(os.path.join(out, f))
    shutil.copyfile(os.path.join(ex, a.onnx), os.path.join(out, "model.onnx"))
    for f in a.extra:
        shutil.copyfile(os.path.join(ex, f), os.path.join(out, f))
    # a graph with external data names its data files (relative to its directory): they ship beside it, under
    # the names the graph gives them, and SHA256SUMS below lists them with every other file
    for g in [a.onnx] + a.extra:
        if g.endswith(".onnx"):
            for loc in data_files(os.path.join(ex, g)):
                if os.path.basename(loc) != loc:
                    raise SystemExit("%s: external data file %s is not beside the graph" % (g, loc))
                shutil.copyfile(os.path.join(ex, loc), os.path.join(out, loc))
    for f in ("config.json", "generation_config.json"):
        shutil.copyfile(os.path.join(ex, f), os.path.join(out, f))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(HERE, "work", "tok", f), os.path.join(out, f))
    info = json.load(open(os.path.join(ex, "torch.json")))
    chk = json.load(open(os.path.join(ex, "check.json")))
    cfg = json.load(open(os.path.join(ex, "config.json")))
    split = json.load(open(os.path.join(HERE, "split.json")))
    served = chk[a.onnx]
    fp32 = chk.get("model_fp32.onnx")
    sizes = {f: os.path.getsize(os.path.join(out, f)) for f in sorted(os.listdir(out))}
    fp32_size = os.path.getsize(os.path.join(ex, "model_fp32.onnx"))
    ar = info["args"]
    if a.edition == 2:
        tcfg = json.load(open(os.path.join(out, "tokenizer_config.json")))
        if tcfg.get("model_max_length") != cfg["max_position_embeddings"] or "chat_template" not in tcfg:
            raise SystemExit("tokenizer_config.json (model_max_length %s, chat template %s) does not match config.json's "
                             "context %d: regenerate it with tokenizer.py export" % (
                                 tcfg.get("model_max_length"), "chat_template" in tcfg, cfg["max_position_embeddings"]))
        L = card2(a, info, chk, cfg, split, served, fp32, sizes, fp32_size)
    else:
        L = card1(a, info, chk, cfg, split, served, fp32, sizes, fp32_size)
    write(out, L)


def write(out, L):
    open(os.path.join(out, "MODEL_CARD.md"), "w").write("\n".join(L))
    sizes = {f: os.path.getsize(os.path.join(out, f)) for f in sorted(os.listdir(out))}
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        for fn in sorted(os.listdir(out)):
            if fn != "SHA256SUMS":
                f.write("%s  %s\n" % (sha(os.path.join(out, fn)), fn))
    tot = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print("packaged %s: %d bytes (%s)" % (out, tot, ", ".join("%s %d" % kv for kv in sizes.items())))



def files_section():
    L = ["## Files\n"]
    L.append("`SHA256SUMS` lists the sha256 of every other file here (`sha256sum -c SHA256SUMS`). Licence: the text is "
             "public domain (KJV); the weights are produced by this project's own code.\n")
    return L


def card1(a, info, chk, cfg, split, served, fp32, sizes, fp32_size):
    ar = info["args"]
    L = []
    L.append("# %s\n" % a.name)
    L.append("**Status:** %s\n" % a.status)
    if a.role:
        L.append(a.role + "\n")
    L.append("## Model\n")
    L.append("Llama architecture (RMSNorm, rotary embeddings in the Hugging Face half-rotation layout, "
             "grouped-query attention, SwiGLU MLP), trained from scratch on the King James Bible "
             "(Debian `bible-kjv`, public domain) by `tools/models/` in this repository.\n")
    L.append("| | |\n| --- | --- |")
    L.append("| parameters | %d (%s embeddings) |" % (info["params"], "tied" if cfg["tie_word_embeddings"] else "untied"))
    L.append("| hidden size / layers | %d / %d |" % (cfg["hidden_size"], cfg["num_hidden_layers"]))
    L.append("| heads / kv heads / head dim | %d / %d / %d |" % (cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]))
    L.append("| MLP hidden | %d |" % cfg["intermediate_size"])
    L.append("| vocab | %d (shared BPE tokenizer, byte fallback) |" % cfg["vocab_size"])
    L.append("| context | %d tokens (trained length; keep prompt + generation within it) |" % cfg["max_position_embeddings"])
    L.append("| special ids | `<unk>`=0, `<s>`=1 (BOS, prepended), `</s>`=2 (EOS, ends a verse) |\n")
    L.append("## Training\n")
    L.append("- Data: every verse is one document `<s> verse </s>`; training windows of %d+1 tokens start at a "
             "random verse's `<s>` in the concatenation of all training verses (canonical order), so later verses "
             "see earlier ones as context. Targets equal to `<s>` are not scored." % ar["seq"])
    L.append("- Held out (never trained on, tokenizer included): %s." % ", ".join(split["heldout_books"]))
    L.append("- AdamW (0.9, 0.95, wd %.2g), peak LR %.2g, warmup %d steps, cosine to 10%%, batch %d x %d tokens, fp32, "
             "CPU 2 threads." % (ar["wd"], ar["lr"], ar["warmup"], ar["batch"], ar["seq"]))
    L.append("- %s: %.2fM tokens (%d steps) in %.1f min wall time.%s\n" % (
        "Distilled from `%s`" % ar["teacher"] if ar.get("teacher") else "Trained directly on the corpus (cross-entropy)",
        info["train_tokens"] / 1e6, info["train_step"], info["train_minutes"], ""))
    L.append("## Evaluation (held-out books)\n")
    L.append("Perplexity per held-out verse (input `<s> verse`, predict `verse </s>`), %d tokens.\n" % served["heldout_tokens"])
    L.append("| graph | file | bytes | held-out ppl | max abs logit diff vs torch | decode ms/token (ORT Java, 2 threads) |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    L.append("| torch fp32 | - | - | %.3f | - | - |" % info["heldout_ppl_torch"])
    if fp32:
        L.append("| ONNX fp32 | %s | %d | %.3f | %.2g | %.2f |" % (
            "model_fp32.onnx" if "model_fp32.onnx" in sizes else "(not shipped)", fp32_size, fp32["heldout_ppl"],
            fp32["max_abs_logit_diff"], fp32["decode_ms_per_token"]))
    L.append("| ONNX int8 (served) | model.onnx | %d | %.3f | %.2g | %.2f |\n" % (
        sizes["model.onnx"], served["heldout_ppl"], served["max_abs_logit_diff"], served["decode_ms_per_token"]))
    if fp32:
        L.append("int8 / fp32 perplexity: %+.2f%%. The fp32 graph's logits match torch within %.2g (prefill, "
                 "multi-token steps after a past, batch with left padding); its greedy continuation equals torch's.\n"
                 % (100 * (served["heldout_ppl"] / fp32["heldout_ppl"] - 1), fp32["max_abs_logit_diff"]))
    L.append("## Greedy samples (torch fp32, prompts from held-out verses)\n")
    for s in info["samples"]:
        L.append("- *%s* — **%s** %s%s" % (s["ref"], s["prompt"], s["greedy"], "" if s["ended_with_eos"] else " …"))
    L.append("")
    L.append("## ONNX interface\n")
    L.append(("Hugging Face Optimum layout (`text-generation-with-past`), opset 14, one graph for prefill and decode. "
              "Inputs: `input_ids` [batch, seq] int64, `attention_mask` [batch, past+seq] int64, `position_ids` "
              "[batch, seq] int64, `past_key_values.{0..%d}.key|value` [batch, %d, past, %d] float32 (zero-length "
              "past for prefill). Outputs: `logits` [batch, seq, %d] float32, `present.{0..%d}.key|value` "
              "[batch, %d, past+seq, %d] float32. Keys cached after rotary; causal mask by index within past+seq "
              "(several tokens can be fed after a past); attention_mask 0 positions are masked. ") % (
                 cfg["num_hidden_layers"] - 1, cfg["num_key_value_heads"], cfg["head_dim"], cfg["vocab_size"],
                 cfg["num_hidden_layers"] - 1, cfg["num_key_value_heads"], cfg["head_dim"])
             + "`model.onnx` is dynamically quantised: MatMul weights uint8 per output column (MatMulInteger), "
               "activations quantised at run time with one scale per token (so a token's logits do not depend on "
               "the other tokens fed in the same call). ")
    inv = served.get("step_invariance")
    if inv == 0:
        L[-1] += ("Attention is exported step-invariant (one M=1 product per query row, keys zero-padded and masked "
                  "to a multiple of 64), so a token's logits are bit-for-bit the same whether it is decoded alone, "
                  "verified in a block of several or part of a prefill (measured by the check: max difference 0), "
                  "which keeps greedy assisted decoding token-for-token equal to plain decoding.\n")
    else:
        L[-1] += ("Attention is exported in the plain (faster) form: a token's logits may differ in the last bits "
                  "between a one-token step and a multi-token call (measured: max difference %s). That is harmless "
                  "for a draft (its proposals need not be reproducible; the target decides every token).\n"
                  % ("%.3g" % inv if inv is not None else "not measured"))
    if a.pair:
        L.append("## The pair: kjv-draft assisting kjv-target\n")
        L.append("Greedy per-token acceptance (`tools/models/accept.py`, torch fp32): for %d held-out prompts (the first "
                 "third of verses from the held-out books), the target generates greedily up to %d tokens or `</s>`; "
                 "acceptance is the share of those positions where the draft's argmax, given the same prefix, is the "
                 "target's token. Mean accepted length at k = 5 is the expected number of tokens a greedy speculative "
                 "round emits with 5 candidates (accepted candidates + the target's own token), computed from the "
                 "per-position agreement.\n" % (json.load(open(a.pair[0]))["prompts"], json.load(open(a.pair[0])).get("max_new", 128)))
        L.append("| draft | acceptance | positions | mean accepted length (k = 5) |")
        L.append("| --- | --- | --- | --- |")
        for pf in a.pair:
            r = json.load(open(pf))
            L.append("| %s | %.3f | %d | %.2f |" % (r.get("label", r["draft"]), r["acceptance"], r["positions"],
                                                   r["tokens_per_target_call"]))
        if a.pair_sampled:
            r0 = json.load(open(a.pair_sampled[0]))
            L.append("\nSpeculative sampling at temperature %.1f (`tools/models/accept_sampled.py`, torch fp32): for %d "
                     "held-out prompts the target samples a continuation (up to 128 tokens or `</s>`); at each of its "
                     "positions the chance that one drafted candidate is accepted is sum_x min(p(x), q(x)), p and q the "
                     "target's and the draft's distributions at that temperature.\n" % (r0["temperature"], r0["prompts"]))
            L.append("| draft | acceptance | positions |")
            L.append("| --- | --- | --- |")
            for pf in a.pair_sampled:
                r = json.load(open(pf))
                acc = r["acceptance_by_draft_temperature"][str(r["temperature"])]
                L.append("| %s | %.3f | %d |" % (r.get("label", r["draft"]), acc, r["positions"]))
        L.append("\nMeasured speed-ups of the served int8 pair are in `docs/benchmarks.md` (`tools/bench/assisted.sh`).\n")
    L += files_section()
    return L



def optimum_interface(cfg):
    return (("Hugging Face Optimum layout (`text-generation-with-past`), opset 14, one graph for prefill and decode. "
             "Inputs: `input_ids` [batch, seq] int64, `attention_mask` [batch, past+seq] int64, `position_ids` "
             "[batch, seq] int64, `past_key_values.{0..%d}.key|value` [batch, %d, past, %d] float32 (zero-length "
             "past for prefill). Outputs: `logits` [batch, seq, %d] float32, `present.{0..%d}.key|value` "
             "[batch, %d, past+seq, %d] float32. Keys cached after rotary; causal mask by index within past+seq "
             "(several tokens can be fed after a past); attention_mask 0 positions are masked. ") % (
                cfg["num_hidden_layers"] - 1, cfg["num_key_value_heads"], cfg["head_dim"], cfg["vocab_size"],
                cfg["num_hidden_layers"] - 1, cfg["num_key_value_heads"], cfg["head_dim"]))


def slots_interface(cfg):
    w = (cfg["max_position_embeddings"] + 63) // 64 * 64
    return (("\"Slots\" KV layout (model metadata `tandem.kv_layout` = `slots`; contract in `tools/models/NOTES.md`, "
             "\"Slots layout\"), opset 14, one graph for prefill and decode. Inputs: `input_ids` [batch, seq] "
             "int64, `position_ids` [batch, seq] int64 (each token's position in its own sequence), "
             "`past_key_values.{0..%d}.key|value` [batch, %d, W, %d] float32 (W = cache width, above every position "
             "fed; a multiple of 64). Outputs: `logits` [batch, seq, %d] float32, `present.{0..%d}.key|value` "
             "[batch, %d, W, %d] float32 = the past with the new tokens' keys/values written at their positions. "
             "No attention_mask: a token attends to the slots j <= its position; a row feeding fewer tokens is "
             "padded with any id at the positions after its real ones. Rotary cos/sin are gathered from constant "
             "tables of %d rows, so every position fed must be < %d. ") % (
                cfg["num_hidden_layers"] - 1, cfg["num_key_value_heads"], cfg["head_dim"], cfg["vocab_size"],
                cfg["num_hidden_layers"] - 1, cfg["num_key_value_heads"], cfg["head_dim"], w, w))


QUANT_TEXT = ("`model.onnx` is dynamically quantised: MatMul weights uint8 per output column (MatMulInteger), "
              "activations quantised at run time with one scale per token (so a token's logits do not depend on "
              "the other tokens fed in the same call). ")


def fmt_text(t):
    """A generated passage on one markdown line: the newline between verses shown as ` / `."""
    return t.replace("\n", " / ")


def card2(a, info, chk, cfg, split, served, fp32, sizes, fp32_size):
    """The second edition's card: passages at context 1024. Every number comes from torch.json (export_onnx.py
    --passages), check.json (OnnxCheck), the accept*.py JSONs and from_onnx.py's JSON of the first edition."""
    ar = info["args"]
    fe = json.load(open(a.first_edition)) if a.first_edition else None
    ctx = cfg["max_position_embeddings"]
    L = ["# %s\n" % a.name, "**Status:** %s\n" % a.status]
    if not info.get("train_done"):
        L.append("**Intermediate checkpoint:** step %d of %s of its training schedule (not the finished model).\n"
                 % (info["train_step"], info.get("total_steps", "?")))
    if info.get("eval_limit"):
        L.append("**Preview evaluation:** held-out numbers below are on an evenly spread subset (%d verses, %d passages), "
                 "not the whole held-out split.\n" % (info["heldout_verses"], info["heldout_passages"]))
    if a.role:
        L.append(a.role + "\n")
    L.append("Second edition (issue 18): trained on **passages** — a chapter's verses joined with `\\n` — at context "
             "%d, so that it continues a text across verse boundaries and ends with `</s>` only where a chapter "
             "ends. The first edition (single verses, context 256) is in this file's git history.\n" % ctx)
    L.append("## Model\n")
    L.append("Llama architecture (RMSNorm, rotary embeddings in the Hugging Face half-rotation layout, "
             "grouped-query attention, SwiGLU MLP), trained from scratch on the King James Bible "
             "(Debian `bible-kjv`, public domain) by `tools/models/` in this repository.\n")
    L.append("| | |\n| --- | --- |")
    L.append("| parameters | %d (%s embeddings) |" % (info["params"], "tied" if cfg["tie_word_embeddings"] else "untied"))
    L.append("| hidden size / layers | %d / %d |" % (cfg["hidden_size"], cfg["num_hidden_layers"]))
    L.append("| heads / kv heads / head dim | %d / %d / %d |" % (cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]))
    L.append("| MLP hidden | %d |" % cfg["intermediate_size"])
    L.append("| vocab | %d (shared BPE tokenizer, byte fallback) |" % cfg["vocab_size"])
    L.append("| context | %d tokens (trained length; keep prompt + generation within it) |" % ctx)
    L.append("| special ids | `<unk>`=0, `<s>`=1 (BOS, prepended), `</s>`=2 (EOS: `</s>` ends a chapter) |")
    L.append("| verse separator | `\\n` (the byte token `<0x0A>` = 13; the tokenizer has no newline piece) |\n")
    L.append("## Training\n")
    L.append("- Data: a chapter's verses (numbers dropped) joined with `\\n` are one document `<s> chapter </s>`; a "
             "chapter longer than the context is cut at verse boundaries into the fewest balanced passages of at most "
             "%d tokens with `<s>`/`</s>`. Training windows of %d+1 tokens start at a random verse anywhere in a "
             "passage (`<s>` + that verse + the stream after it: the rest of the passage, `</s>`, the next passages), "
             "so prompts need not start a chapter. Targets equal to `<s>` are not scored." % (ctx, ar["seq"]))
    L.append("- Held out (never trained on, tokenizer included): %s." % ", ".join(split["heldout_books"]))
    if ar.get("init") and fe:
        start = ("continued from the first edition's weights (rebuilt by `tools/models/from_onnx.py` from the packaged "
                 "first-edition graph `%s`; fresh optimiser and schedule)" % fe["onnx"].replace("../../", ""))
    elif ar.get("init"):
        start = "continued from `%s` (fresh optimiser and schedule)" % ar["init"]
    else:
        start = "trained from random initialisation"
    how = ("distilled from `%s`" % ar["teacher"]) if ar.get("teacher") else "cross-entropy on the corpus"
    L.append("- %s; %s." % (start[0].upper() + start[1:], how))
    L.append("- AdamW (0.9, 0.95, wd %.2g), peak LR %.2g, warmup %d steps, cosine to 10%%, batch %d x %d tokens, fp32, "
             "CPU %s thread(s)." % (ar["wd"], ar["lr"], ar["warmup"], ar["batch"], ar["seq"], ar.get("threads") or 2))
    L.append("- %.2fM tokens (%d steps) in %.1f min wall time.\n" % (info["train_tokens"] / 1e6, info["train_step"],
                                                                     info["train_minutes"]))
    L.append("## Evaluation (held-out books)\n")
    L.append("- **Passage perplexity**: each held-out passage alone (input `<s> passage`, predict `passage </s>`), "
             "%d tokens, %d passages." % (info["heldout_passage_tokens"], info["heldout_passages"]))
    L.append("- **Per-verse perplexity** (the first edition's measure): each held-out verse alone (input `<s> verse`, "
             "predict `verse </s>`), %d tokens, %d verses. It scores `</s>` after every single verse, where this "
             "edition is trained to write `\\n` and go on (`</s>` only ends a chapter), so it penalises this edition; "
             "compare editions on the same measure.\n" % (info["heldout_verse_tokens"], info["heldout_verses"]))
    L.append("| graph | file | bytes | passage ppl | per-verse ppl | max abs logit diff vs torch | decode ms/token (ORT Java, 2 threads) |")
    L.append("| --- | --- | --- | --- | --- | --- | --- |")
    L.append("| torch fp32 | - | - | %.3f | %.3f | - | - |" % (info["heldout_passage_ppl_torch"], info["heldout_ppl_torch"]))
    if fp32:
        L.append("| ONNX fp32 | %s | %d | %.3f | %.3f | %.2g | %.2f |" % (
            "model_fp32.onnx" if "model_fp32.onnx" in sizes else "(not shipped)", fp32_size, fp32["heldout_ppl"],
            fp32["heldout_verses_ppl"], fp32["max_abs_logit_diff"], fp32["decode_ms_per_token"]))
    L.append("| ONNX int8 (served) | model.onnx | %d | %.3f | %.3f | %.2g | %.2f |\n" % (
        sizes["model.onnx"], served["heldout_ppl"], served["heldout_verses_ppl"], served["max_abs_logit_diff"],
        served["decode_ms_per_token"]))
    if fp32:
        L.append("int8 / fp32 passage perplexity: %+.2f%%. The fp32 graph's logits match torch within %.2g on a %d-token "
                 "held-out passage (prefill, multi-token steps after a past, %s); its greedy continuation equals torch's.\n"
                 % (100 * (served["heldout_ppl"] / fp32["heldout_ppl"] - 1), fp32["max_abs_logit_diff"], info["ref_len"],
                    "batched rows" if served["layout"] == "slots" else "batch with left padding"))
    if fe:
        L.append("Against the first edition (torch fp32, rebuilt from its packaged graph; %s):\n"
                 % ("whole held-out split" if not info.get("eval_limit") else "whole held-out split, while the numbers "
                    "above are a subset: not comparable"))
        L.append("| edition | passage ppl | per-verse ppl |\n| --- | --- | --- |")
        L.append("| first (verses, context 256) | %.2f | %.2f |" % (fe["heldout_passage_ppl"], fe["heldout_ppl"]))
        L.append("| second (this model, torch fp32) | %.2f | %.2f |\n" % (info["heldout_passage_ppl_torch"],
                                                                        info["heldout_ppl_torch"]))
    hist = [h for h in info.get("history", []) if "heldout_passage_ppl" in h]
    if hist:
        L.append("Held-out evaluations during training (passage ppl on all held-out passages; per-verse ppl on %s):\n"
                 % ("200 evenly spread verses, all at the final step" if any("heldout200_ppl" in h for h in hist) else "all verses"))
        L.append("| step | tokens | passage ppl | per-verse ppl |\n| --- | --- | --- | --- |")
        for h in hist:
            v = h.get("heldout_ppl", h.get("heldout200_ppl"))
            L.append("| %d | %.2fM | %.2f | %.2f |" % (h["step"], h["tokens"] / 1e6, h["heldout_passage_ppl"], v))
        L.append("")
    L.append("## Greedy samples (torch fp32, held-out passage prompts ending inside a verse)\n")
    L.append("Prompts from `tools/bench/prompts/passages.txt` (held-out passages cut inside a verse); up to %d new tokens "
             "or `</s>`. ` / ` marks the `\\n` between verses; the prompt is in bold (its start shortened).\n"
             % max(s["new_tokens"] for s in info["samples"]))
    for s in info["samples"]:
        pr = fmt_text(s["prompt"])
        if len(pr) > 160:
            pr = "…" + pr[-150:].split(" ", 1)[1]
        L.append("- *%s* — **%s** %s%s  \n  (%d tokens, %d verse break%s%s)" % (
            s["ref"], pr, fmt_text(s["greedy"]), "" if s["ended_with_eos"] else " …", s["new_tokens"],
            s["verse_breaks"], "" if s["verse_breaks"] == 1 else "s", ", ended with `</s>`" if s["ended_with_eos"] else ""))
    L.append("")
    L.append("## ONNX interface\n")
    L.append((slots_interface(cfg) if served["layout"] == "slots" else optimum_interface(cfg)) + QUANT_TEXT)
    inv = served.get("step_invariance")
    if inv == 0:
        L[-1] += ("Attention is exported step-invariant (one M=1 product per query row, keys zero-padded and masked "
                  "to a multiple of 64), so a token's logits are bit-for-bit the same whether it is decoded alone, "
                  "verified in a block of several or part of a prefill (measured by the check: max difference 0), "
                  "which keeps greedy assisted decoding token-for-token equal to plain decoding.")
        if served["layout"] == "slots":
            L[-1] += (" Batch invariance (measured): a row's logits alone and inside batched calls (3 rows with stale "
                      "slots; rows at batch index 0/1/2 with 1-11 tokens) differ in %d and %d logits (must be 0)."
                      % (served["batch_logits_differing"], served["placement_logits_differing"]))
        L[-1] += "\n"
    else:
        L[-1] += ("Attention is exported in the plain (faster) form: a token's logits may differ in the last bits "
                  "between a one-token step and a multi-token call (measured: max difference %s). That is harmless "
                  "for a draft (its proposals need not be reproducible; the target decides every token).\n"
                  % ("%.3g" % inv if inv is not None else "not measured"))
    if a.other_layout:
        oc = json.load(open(a.other_layout))
        o = oc[a.onnx]
        L.append("The same checkpoint was also exported and checked in the %s layout (not shipped here): int8 passage "
                 "ppl %.3f, step invariance %.3g%s.\n" % (
                     o["layout"], o["heldout_ppl"], o["step_invariance"],
                     ", batch invariance %d + %d differing logits" % (o["batch_logits_differing"], o["placement_logits_differing"])
                     if o["layout"] == "slots" else ""))
    if a.pair:
        r0 = json.load(open(a.pair[0]))
        L.append("## The pair: kjv-draft assisting kjv-target\n")
        L.append("Greedy per-token acceptance (`tools/models/accept.py`, torch fp32): for %d held-out passage prompts "
                 "(`%s`), the target generates greedily up to %d tokens or `</s>` (context %d); acceptance is the share "
                 "of those positions where the draft's argmax, given the same prefix, is the target's token. Mean accepted "
                 "length at k = %d is the expected number of tokens a greedy speculative round emits with %d candidates "
                 "(accepted candidates + the target's own token), computed from the per-position agreement.\n"
                 % (r0["prompts"], r0.get("prompt_file") or "held-out verses", r0["max_new"],
                    r0.get("context", 256), r0["k"], r0["k"]))
        L.append("| draft | acceptance | positions | mean accepted length (k = %d) |" % r0["k"])
        L.append("| --- | --- | --- | --- |")
        for pf in a.pair:
            r = json.load(open(pf))
            L.append("| %s | %.3f | %d | %.2f |" % (r.get("label", r["draft"]), r["acceptance"], r["positions"],
                                                   r["tokens_per_target_call"]))
        if a.pair_sampled:
            r0 = json.load(open(a.pair_sampled[0]))
            L.append("\nSpeculative sampling at temperature %.1f (`tools/models/accept_sampled.py`, torch fp32): for %d "
                     "held-out passage prompts the target samples a continuation (%s `</s>`); at each of "
                     "its positions the chance that one drafted candidate is accepted is sum_x min(p(x), q(x)), p and q "
                     "the target's and the draft's distributions at that temperature.\n"
                     % (r0["temperature"], r0["prompts"],
                        "up to %d tokens or" % r0["max_new"] if "max_new" in r0 else "up to its token limit or"))
            L.append("| draft | acceptance | positions |")
            L.append("| --- | --- | --- |")
            for pf in a.pair_sampled:
                r = json.load(open(pf))
                acc = r["acceptance_by_draft_temperature"][str(r["temperature"])]
                L.append("| %s | %.3f | %d |" % (r.get("label", r["draft"]), acc, r["positions"]))
        L.append("\nSpeed-ups of the served int8 pair are measured in the service with `tools/bench/assisted.sh` "
                 "(`docs/benchmarks.md`).\n")
    L += files_section()
    return L


if __name__ == "__main__":
    main()
