#!/usr/bin/python3
"""Helpers of `build.sh slots-target` and `build.sh slots-draft` (a bundled model re-exported in the slots KV
layout):

  slots_target.py prompts OUT.bin [N]      the model card's greedy-sample prompts (as export_onnx.py picks them)
                                           in OnnxCheck's --prompts format, then N held-out prompts (the first N of
                                           the pair measurement's, data.heldout_prompts: a verse's first third)
  slots_target.py compare SHIPPED NEW [JSON]  quantised weight initializers of two int8 graphs (quantize.py),
                                           matched by name: byte-identical or how they differ; exit 1 unless all
                                           are byte-identical
  slots_target.py transplant SHIPPED NEW OUT   NEW with every quantised weight initializer replaced by SHIPPED's
                                           of the same name (same shape and type required): the re-quantised
                                           scales differ from the shipped ones by 1 ulp here and there (compare),
                                           enough to flip a greedy near-tie; with the shipped bytes the slots graph
                                           computes with exactly the shipped weights
  slots_target.py texts CHECK.json         decodes OnnxCheck's prompts_greedy of every model
"""
import json, os, struct, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

CARD_VERSES = (0, 90, 300, 400, 500)  # export_onnx.py's samples: the first third of these held-out verses


def card_prompts():
    sp = data.sp()
    meta = [l.split("\t") for l in open(os.path.join(data.WORK, "corpus", "heldout_meta.tsv")).read().splitlines()]
    out = []
    for i in CARD_VERSES:
        words = meta[i][3].split()
        text = " ".join(words[:max(3, len(words) // 3)])
        out.append(("%s %s:%s" % tuple(meta[i][:3]), text, [data.BOS] + sp.encode(text)))
    return out


def heldout_prompts(n):
    sp = data.sp()
    return [("held-out %d" % i, sp.decode(ids[1:]), ids) for i, ids in enumerate(data.heldout_prompts(n))] if n else []


def prompts(path, n_heldout=0):
    ps = card_prompts() + heldout_prompts(n_heldout)
    with open(path, "wb") as f:
        f.write(struct.pack("<i", len(ps)))
        for _, _, ids in ps:
            f.write(struct.pack("<i", len(ids)))
            f.write(np.array(ids, dtype="<i8").tobytes())
    for ref, text, ids in ps:
        print("%s: %s (%d tokens)" % (ref, text, len(ids)))


QUANT_SUFFIXES = ("_Wq", "_Wscale", "_Wzp", "_Eq", "_Escale", "_Ezp")


def compare(shipped, new):
    import onnx
    from onnx import numpy_helper

    def quantised(path):
        return {i.name: i for i in onnx.load(path).graph.initializer if i.name.endswith(QUANT_SUFFIXES)}

    a, b = quantised(shipped), quantised(new)
    missing = sorted(set(a) ^ set(b))
    same, differ = 0, []
    for name in sorted(set(a) & set(b)):
        x, y = numpy_helper.to_array(a[name]), numpy_helper.to_array(b[name])
        if x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes():
            same += 1
            continue
        if x.shape != y.shape:
            differ.append((name, "shape %s vs %s" % (x.shape, y.shape)))
            continue
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        n = int((x != y).sum())
        if x.dtype == np.float32:
            ulps = np.abs(x.view(np.int32).astype(np.int64) - y.view(np.int32).astype(np.int64))
            differ.append((name, "%d of %d values differ, max abs %.3g, max %d ulp" % (n, x.size, d.max(), ulps.max())))
        else:
            differ.append((name, "%d of %d values differ, max abs %d" % (n, x.size, d.max())))
    total_bytes = sum(len(t.raw_data) for t in a.values())
    print("quantised initializers: %d in the shipped graph, %d in the new; %d byte-identical, %d differ, %d unmatched "
          "(shipped: %.1f MB)" % (len(a), len(b), same, len(differ), len(missing), total_bytes / 1e6))
    for name, what in differ:
        print("  differs: %s: %s" % (name, what))
    for name in missing:
        print("  only in %s: %s" % ("shipped" if name in a else "new", name))
    result = {"shipped": len(a), "new": len(b), "identical": same, "differ": dict(differ), "unmatched": missing}
    return result, 0 if not missing and not differ else 1


def transplant(shipped, new, out):
    import onnx
    src = {i.name: i for i in onnx.load(shipped).graph.initializer if i.name.endswith(QUANT_SUFFIXES)}
    m = onnx.load(new)
    n = 0
    for i in m.graph.initializer:
        if i.name.endswith(QUANT_SUFFIXES):
            s = src.pop(i.name, None)
            if s is None or list(s.dims) != list(i.dims) or s.data_type != i.data_type:
                sys.exit("transplant: %s has no match of the same shape and type in %s" % (i.name, shipped))
            i.CopyFrom(s)
            n += 1
    if src:
        sys.exit("transplant: not in the new graph: %s" % sorted(src)[:5])
    onnx.checker.check_model(m)
    onnx.save(m, out)
    print("transplanted %d quantised initializers from %s -> %s" % (n, shipped, out))


def texts(check_json):
    sp = data.sp()
    c = json.load(open(check_json))
    ps = card_prompts()
    for model, r in c.items():  # the card prompts come first (a draft's check adds held-out ones after them)
        print("== %s" % model)
        for (ref, text, _), g in zip(ps, r.get("prompts_greedy") or []):
            print("- %s — **%s** %s%s" % (ref, text, sp.decode([t for t in g if t > 2]), "</s>" if g and g[-1] == 2 else " …"))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "prompts":
        prompts(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif cmd == "compare":
        res, rc = compare(sys.argv[2], sys.argv[3])
        if len(sys.argv) > 4:
            json.dump(res, open(sys.argv[4], "w"), indent=2)
        sys.exit(rc)
    elif cmd == "transplant":
        transplant(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "texts":
        texts(sys.argv[2])
    else:
        sys.exit(__doc__)
