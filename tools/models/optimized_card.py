#!/usr/bin/python3
"""Records a model directory's model_optimized.onnx (ONNX Runtime's own graph, written by fuse_graph.py) in its
MODEL_CARD.md and SHA256SUMS: a section "## ONNX Runtime graph: model_optimized.onnx" (replaced if there is one)
with the options it was built with, its size, OnnxCheck's figures against model.onnx and StepBench's timings of both.

  optimized_card.py --model-dir ../../models/kjv-target --check work/optimized/kjv-target.check.json \
      --bench work/optimized/kjv-target.bench.txt --options "--matmul nbits4 --block 32 ..."

--check: OnnxCheck's --json of "model.onnx model_optimized-candidate.onnx" (the first key is model.onnx);
--bench: StepBench's output for the same two graphs ("<graph>: median X best Y ms/call" after each
"StepBench: B=.. T=.." header)."""
import argparse
import json
import os
import re

from package import sha  # the manifest is written as package.py writes it

HEADER = "## ONNX Runtime graph: model_optimized.onnx"


def bench(path):
    """{(B, T): [median of the first graph, median of the second]} from StepBench's output."""
    out, key = {}, None
    for line in open(path):
        m = re.match(r"StepBench: B=(\d+) T=(\d+)", line)
        if m:
            key = (int(m.group(1)), int(m.group(2)))
            out[key] = []
            continue
        m = re.search(r": median ([0-9.]+) best", line)
        if m and key:
            out[key].append(float(m.group(1)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--check", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--options", required=True)
    a = ap.parse_args()
    chk = json.load(open(a.check))
    (base_name, base), (_, opt) = list(chk.items())[:2]
    for k in ("step_invariance", "batch_invariance"):
        assert opt[k] == 0, "%s: %s %s, must be 0" % (a.check, k, opt[k])
    assert opt["batch_logits_differing"] == 0 and opt["placement_logits_differing"] == 0, a.check
    times = bench(a.bench)
    size = os.path.getsize(os.path.join(a.model_dir, "model_optimized.onnx"))
    base_size = os.path.getsize(os.path.join(a.model_dir, "model.onnx"))

    import onnx
    nodes = [len(onnx.load(os.path.join(a.model_dir, g), load_external_data=False).graph.node)
             for g in ("model_optimized.onnx", "model.onnx")]

    def ppl(c, k):
        return "%.3f" % c[k] if k in c else "-"

    L = [HEADER, ""]
    L.append("The graph the ONNX Runtime engine runs (it prefers `model_optimized.onnx`, the name Optimum's ORTOptimizer "
             "gives its fused graphs, to `model.onnx`): `model.onnx`'s weights rebuilt by `tools/models/fuse_graph.py %s` "
             "(`build.sh optimized`) with ONNX Runtime's contrib operators (MatMulNBits, RotaryEmbedding, "
             "SkipSimplifiedLayerNormalization): %d nodes where `model.onnx` has %d. OpenVINO and the "
             "reference engine cannot read those operators and run `model.onnx`; `tandem.target.graph=model.onnx` "
             "(or `tandem.draft.graph`) runs it on ONNX Runtime too." % (a.options, nodes[0], nodes[1]))
    if "nbits4" in a.options:
        L.append("")
        L.append("Its weights are 4-bit: `model.onnx`'s int8 weights dequantised and re-quantised per block of %s "
                 "input values (a float scale and a 4-bit zero point per block; MatMulNBits at accuracy_level 4 "
                 "multiplies in int8). Chosen over the 8-bit rebuild (the same weights as `model.onnx`) by measurement: "
                 "faster plain decoding, assisted decoding as fast, passage perplexity within 0.1%% (docs/benchmarks.md)."
                 % re.search(r"--block (\d+)", a.options).group(1))
    elif "nbits8" in a.options:
        L.append("")
        L.append("Its weights are `model.onnx`'s own 8-bit weights (each column's scale and zero point repeated per "
                 "block); MatMulNBits at accuracy_level 4 multiplies in int8.")
    L.append("")
    L.append("| graph | bytes | passage ppl | per-verse ppl | step / batch / placement invariance | greedy = model.onnx "
             "(25 prompts x 40 tokens) | tokens before the first difference |")
    L.append("| --- | --- | --- | --- | --- | --- | --- |")
    L.append("| model.onnx | %d | %s | %s | %g / %d / %d | - | - |" % (
        base_size, ppl(base, "heldout_ppl"), ppl(base, "heldout_verses_ppl"), base["step_invariance"],
        base["batch_logits_differing"], base["placement_logits_differing"]))
    L.append("| model_optimized.onnx | %d | %s | %s | %g / %d / %d | %d of %d | %d of %d |" % (
        size, ppl(opt, "heldout_ppl"), ppl(opt, "heldout_verses_ppl"), opt["step_invariance"],
        opt["batch_logits_differing"], opt["placement_logits_differing"], opt["prompts_greedy_equal"],
        len(opt["prompts_greedy"]), opt["prompts_greedy_prefix_tokens"], opt["prompts_first_model_tokens"]))
    L.append("")
    L.append("Invariance 0 means a row's logits do not depend on how many tokens a call feeds, on the other rows of a "
             "batch or on the row's place in it: greedy assisted decoding equals plain decoding to the bit, alone or "
             "batched, on either graph. The two graphs round differently (other integer kernels), so their greedy "
             "texts part after a while; each is exact against itself.")
    L.append("")
    L.append("ms per engine call (`StepBench`, ONNX Runtime Java, 2 threads, 300 cached positions, medians of 5 runs):")
    L.append("")
    L.append("| call | model.onnx | model_optimized.onnx | ratio |")
    L.append("| --- | --- | --- | --- |")
    for (b, t), v in sorted(times.items()):
        if len(v) >= 2:
            L.append("| %d row(s) x %d token(s) | %.2f | %.2f | %.2fx |" % (b, t, v[0], v[1], v[0] / v[1]))
    L.append("")
    L.append("Served speed (plain and assisted, both graphs side by side): docs/benchmarks.md.")
    L.append("")

    card = os.path.join(a.model_dir, "MODEL_CARD.md")
    text = open(card).read().replace("| ONNX int8 (served) |", "| ONNX int8 (served by OpenVINO and the reference engine) |")
    start = text.find(HEADER)
    if start >= 0:  # replace the section: up to the next "## " heading or the end
        nxt = text.find("\n## ", start + len(HEADER))
        text = text[:start] + (text[nxt + 1:] if nxt >= 0 else "")
    files = text.find("## Files")  # before the files section, else at the end
    section = "\n".join(L) + "\n"
    text = text[:files] + section + text[files:] if files >= 0 else text.rstrip("\n") + "\n\n" + section
    open(card, "w").write(text)
    with open(os.path.join(a.model_dir, "SHA256SUMS"), "w") as f:
        for fn in sorted(os.listdir(a.model_dir)):
            if fn != "SHA256SUMS":
                f.write("%s  %s\n" % (sha(os.path.join(a.model_dir, fn)), fn))
    print("%s: model_optimized.onnx %d bytes recorded in MODEL_CARD.md and SHA256SUMS" % (a.model_dir, size))


if __name__ == "__main__":
    main()
