#!/usr/bin/python3
"""The Optimum export variants users bring, as tiny fixtures for the Java engine tests (issue 16 item 3):
the random Llama of slots-tiny (same seed, same weights: slots_fixture.build_model) exported in Hugging Face
Optimum's layout (inputs input_ids, attention_mask[, position_ids], past_key_values.{i}.key|value [B,kvh,past,hd];
outputs logits, present.{i}.key|value), with the usual attention of an Optimum export (not the factory's
step-invariant one), in the forms the factory's own graphs never take:

  optimum-tiny-nopos/   model.onnx without a position_ids input (the graph counts positions from the past's
                        length, as GPT-2-era exports do), fp32; generation_config.json lists several EOS ids
                        (Llama 3 style: eos_token_id [2, a, b, c]; config.json keeps the single id 2)
  optimum-tiny-fp16/    model.onnx with fp16 weights, fp16 past/present and fp16 logits (what an fp16 Optimum
                        export of a recent transformers gives); norms, rotary angles and softmax in fp32, as
                        transformers computes them in a half-precision Llama (see to_fp16)
  optimum-tiny-merged/  decoder_model_merged.onnx: Optimum's merged decoder, an If on the bool input
                        use_cache_branch choosing the with-past graph or the without-past one (see merge)

each with config.json, generation_config.json, the bundled KJV tokenizer and reference.json (torch fp32 greedy
ids, as slots-tiny's). Deterministic: rerunning reproduces the committed bytes.

  optimum_fixture.py --out ../../src/test/resources/models
"""
import argparse, hashlib, json, os, shutil, sys
import numpy as np
import torch
import onnx
from onnx import helper, numpy_helper, TensorProto
import sentencepiece as spm

torch.set_num_threads(2)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import Attention  # noqa: E402
from slots_fixture import build_model, greedy_with_gap, PROMPTS, MAX_NEW  # noqa: E402

EOS = 2
REFERENCE_DOC = ("Greedy continuations computed in torch (fp32) from the weights the graph was exported from (those "
                 "of slots-tiny: same seed): prompt_ids = [<s>] + the tokenizer's encoding of prompt, greedy_ids = up "
                 "to max_new tokens, stopping after any of eos_token_ids. min_top2_gap = smallest gap between the "
                 "best and second-best logit over the greedy steps (how robust the argmax is to the graph's "
                 "rounding). Written by tools/models/optimum_fixture.py.")


class WithPast(torch.nn.Module):
    """Optimum's decoder with past: (input_ids, attention_mask[, position_ids], past...) -> (logits, presents...)."""

    def __init__(self, m, position_ids):
        super().__init__()
        self.m, self.position_ids = m, position_ids

    def forward(self, input_ids, attention_mask, *rest):
        pos, past_flat = (rest[0], rest[1:]) if self.position_ids else (None, rest)
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, presents = self.m(input_ids, attention_mask, pos, past)  # pos None: past_len.. (model.forward)
        return (logits, *[t for kv in presents for t in kv])


class WithoutPast(torch.nn.Module):
    """Optimum's decoder without past (the first step): (input_ids, attention_mask, position_ids) -> (logits, presents...)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, position_ids):
        logits, presents = self.m(input_ids, attention_mask, position_ids, None)
        return (logits, *[t for kv in presents for t in kv])


def export(model, path, position_ids=True, past=True):
    """torch.onnx.export in Optimum's input/output names and dynamic axes, opset 14, the plain attention."""
    c = model.config
    L, kvh, hd = c.num_hidden_layers, c.num_key_value_heads, c.head_dim
    b, s, p = 2, 3, (4 if past else 0)
    torch.manual_seed(0)  # the example inputs, so that reruns trace the same graph
    ids = torch.randint(3, c.vocab_size, (b, s))
    am = torch.ones(b, p + s, dtype=torch.long)
    pos = (torch.arange(s) + p)[None].expand(b, s).contiguous()
    args, names = [ids, am], ["input_ids", "attention_mask"]
    total = "past_sequence_length + sequence_length" if past else "sequence_length"
    dyn = {"input_ids": {0: "batch_size", 1: "sequence_length"}, "attention_mask": {0: "batch_size", 1: total},
           "logits": {0: "batch_size", 1: "sequence_length"}}
    if position_ids:
        args.append(pos); names.append("position_ids")
        dyn["position_ids"] = {0: "batch_size", 1: "sequence_length"}
    out_names = ["logits"]
    for i in range(L):
        for kv in ("key", "value"):
            if past:
                n = "past_key_values.%d.%s" % (i, kv)
                args.append(torch.randn(b, kvh, p, hd)); names.append(n)
                dyn[n] = {0: "batch_size", 2: "past_sequence_length"}
            n = "present.%d.%s" % (i, kv)
            out_names.append(n); dyn[n] = {0: "batch_size", 2: total}
    wrapper = WithPast(model, position_ids) if past else WithoutPast(model)
    assert not Attention.row_wise
    with torch.no_grad():
        torch.onnx.export(wrapper, tuple(args), path, opset_version=14, input_names=names, output_names=out_names,
                          dynamic_axes=dyn, do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m


# ---------------------------------------------------------------------------------------------------------------
# fp16: what an fp16 export of transformers' Llama computes. Torch 1.13 cannot trace a half model on the CPU (no
# half matmul), so the fp32 graph is converted: every float tensor becomes fp16 except where transformers computes
# in fp32 in a half model: the rotary angles and their cos/sin (LlamaRotaryEmbedding, cast to half after), the
# RMSNorm statistics (LlamaRMSNorm upcasts) and the attention softmax (softmax(..., dtype=float32)); Casts are
# inserted where the two meet. Constants beyond fp16's range (the mask's float32 min) are clipped to +-65504.
FP32_OPS = {"Cos", "Sin", "Softmax", "Pow", "ReduceMean", "Sqrt", "Reciprocal"}


def to_fp16(fp32):
    model = onnx.ModelProto()
    model.CopyFrom(fp32)
    g = model.graph
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {}
    for vi in list(inferred.graph.value_info) + list(g.input) + list(g.output):
        types[vi.name] = vi.type.tensor_type.elem_type
    inits = {t.name: t for t in g.initializer}
    for t in g.initializer:
        types[t.name] = t.data_type
    producer = {o: n for n in g.node for o in n.output}
    for n in g.node:
        if n.op_type == "Constant":
            types[n.output[0]] = n.attribute[0].t.data_type
    is_float = lambda v: types.get(v) == TensorProto.FLOAT

    # the nodes kept in fp32: FP32_OPS, everything computing a rotary angle (upstream of Cos/Sin), and what is
    # computed from fp32 values and constants only (the norm's eps add, 1/sqrt)
    keep = set()
    stack = [n for n in g.node if n.op_type in ("Cos", "Sin")]
    while stack:
        n = stack.pop()
        if id(n) in keep:
            continue
        keep.add(id(n))
        for v in n.input:
            if is_float(v) and v in producer and producer[v].op_type != "Constant":
                stack.append(producer[v])
    keep |= {id(n) for n in g.node if n.op_type in FP32_OPS}
    constant = lambda v: v in inits or (v in producer and producer[v].op_type == "Constant")
    changed = True
    while changed:
        changed = False
        for n in g.node:
            fl = [v for v in n.input if is_float(v)]
            if id(n) not in keep and n.op_type not in ("Constant", "Cast") and fl and all(
                    constant(v) or (v in producer and id(producer[v]) in keep) for v in fl) and any(
                    not constant(v) for v in fl):
                keep.add(id(n)); changed = True

    def half(arr):
        return np.clip(arr, -65504, 65504).astype(np.float16)

    # where each float value lives: graph inputs and values made by fp16 nodes are fp16; fp32 nodes' are fp32
    precision = {}  # value -> FLOAT or FLOAT16 as produced
    for i in g.input:
        if is_float(i.name):
            i.type.tensor_type.elem_type = TensorProto.FLOAT16
            precision[i.name] = TensorProto.FLOAT16
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node
                 if n.op_type == "Constant" and is_float(n.output[0])}
    new_nodes, casts, copies16, init16 = [], {}, {}, []

    def value_as(v, want):
        """The name of v in precision `want`, adding a Cast, or an fp16 copy of a constant, when needed."""
        if v in inits or v in constants:
            if want == TensorProto.FLOAT:
                return v
            if v not in copies16:
                c16 = v + "_fp16"
                arr = half(numpy_helper.to_array(inits[v]) if v in inits else constants[v])
                if v in inits:
                    init16.append(numpy_helper.from_array(arr, c16))
                else:
                    new_nodes.append(helper.make_node("Constant", [], [c16], name="Constant_" + c16,
                                                      value=numpy_helper.from_array(arr, c16)))
                copies16[v] = c16
            return copies16[v]
        have = precision.get(v)
        if have is None or have == want:
            return v
        if (v, want) not in casts:
            name = v + ("_fp16" if want == TensorProto.FLOAT16 else "_fp32")
            new_nodes.append(helper.make_node("Cast", [v], [name], to=want, name="Cast_" + name))
            casts[(v, want)] = name
        return casts[(v, want)]

    for n in g.node:
        for o in n.output:
            if o not in types:
                raise SystemExit("no type inferred for %s (%s)" % (o, n.op_type))
        if n.op_type == "Constant":
            new_nodes.append(n)  # float ones stay fp32; fp16 consumers get a copy (value_as)
            continue
        want = TensorProto.FLOAT if id(n) in keep else TensorProto.FLOAT16
        for k, v in enumerate(n.input):
            if v and is_float(v):
                n.input[k] = value_as(v, want)
        if n.op_type == "Cast":
            to = next(a for a in n.attribute if a.name == "to")
            if to.i == TensorProto.FLOAT:
                to.i = want
        if n.op_type == "ConstantOfShape" and n.attribute and n.attribute[0].t.data_type == TensorProto.FLOAT \
                and want == TensorProto.FLOAT16:
            n.attribute[0].t.CopyFrom(numpy_helper.from_array(half(numpy_helper.to_array(n.attribute[0].t))))
        new_nodes.append(n)
        for o in n.output:
            if is_float(o):
                precision[o] = want
    # outputs stay fp16 (logits too, as a recent transformers leaves them): cast any made in fp32
    for o in g.output:
        if is_float(o.name):
            if precision.get(o.name) == TensorProto.FLOAT:
                raise SystemExit("output %s is computed in fp32" % o.name)
            o.type.tensor_type.elem_type = TensorProto.FLOAT16
    used = {v for n in new_nodes for v in n.input}
    kept_inits = [t for t in g.initializer if t.name in used] + [t for t in init16 if t.name in used]
    del g.node[:]
    g.node.extend(new_nodes)
    del g.initializer[:]
    g.initializer.extend(kept_inits)
    del g.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    del model.graph.value_info[:]
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------------------------------------------------
# Optimum's merged decoder (optimum.onnx.merge_decoders): one graph whose inputs are the with-past decoder's plus
# use_cache_branch (bool [1]); one If node runs the with-past graph (then) or the without-past graph (else) as
# subgraphs reading the outer inputs; their weights are deduplicated (by content) into the outer graph.
def merge(with_past, without_past):
    outer_inits, by_content = [], {}

    def take_weights(g, prefix):
        rename = {}
        for t in g.initializer:
            key = (t.data_type, tuple(t.dims), hashlib.sha256(numpy_helper.to_array(t).tobytes()).hexdigest())
            if key not in by_content:
                name = "w%d" % len(by_content)
                c = TensorProto(); c.CopyFrom(t); c.name = name
                outer_inits.append(c); by_content[key] = name
            rename[t.name] = by_content[key]
        outer = {i.name for i in with_past.graph.input}
        nodes = []
        for n in g.node:
            m = onnx.NodeProto(); m.CopyFrom(n)
            m.name = prefix + n.name
            for k, v in enumerate(m.input):
                if v in rename:
                    m.input[k] = rename[v]
                elif v and v not in outer:
                    m.input[k] = prefix + v
            for k, v in enumerate(m.output):
                m.output[k] = prefix + v
            nodes.append(m)
        outs = []
        for o in g.output:
            vi = onnx.ValueInfoProto(); vi.CopyFrom(o); vi.name = prefix + o.name
            outs.append(vi)
        return helper.make_graph(nodes, prefix.strip("/"), [], outs)

    then_g = take_weights(with_past.graph, "with_past/")
    else_g = take_weights(without_past.graph, "without_past/")
    assert [o.name for o in with_past.graph.output] == [o.name for o in without_past.graph.output]
    outputs = []
    for o in with_past.graph.output:
        t = o.type.tensor_type
        dims = ["batch_size", "sequence_length", "vocab"] if o.name == "logits" else \
            ["batch_size", t.shape.dim[1].dim_value or "kv_heads", "total_sequence_length", t.shape.dim[3].dim_value or "head_dim"]
        outputs.append(helper.make_tensor_value_info(o.name, t.elem_type, dims))
    inputs = list(with_past.graph.input) + [helper.make_tensor_value_info("use_cache_branch", TensorProto.BOOL, [1])]
    node = helper.make_node("If", ["use_cache_branch"], [o.name for o in outputs], name="optimum::if",
                            then_branch=then_g, else_branch=else_g)
    g = helper.make_graph([node], "merged_decoder", inputs, outputs, outer_inits)
    m = helper.make_model(g, opset_imports=list(with_past.opset_import), producer_name="optimum_fixture.py")
    m.ir_version = with_past.ir_version
    onnx.checker.check_model(m)
    return m


def choose_eos(gens):
    """Extra EOS ids that stop three of the four prompts' greedy continuations at different tokens (the fourth
    runs to max_new): for prompts 0, 1 and 3, the first new token at index >= 3 that the continuation has not
    produced before."""
    extra = []
    for i in (0, 1, 3):
        g = gens[i]
        extra.append(next(t for k, t in enumerate(g) if k >= 3 and t not in g[:k] and t not in extra and t != EOS))
    return extra


@torch.no_grad()
def greedy_until(model, ids, n, eos):
    gen, gap = greedy_with_gap(model, ids, n)  # stops at 2 only
    for k, t in enumerate(gen):
        if t in eos:
            return gen[:k + 1], gap
    return gen, gap


def write_dir(out, name, model, graph_name, graph, eos, note, sp, torch_dtype="float32"):
    d = os.path.join(out, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    onnx.save(graph, os.path.join(d, graph_name))
    cfg = model.config.hf_config()
    cfg["torch_dtype"] = torch_dtype
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
    json.dump({"bos_token_id": 1, "eos_token_id": eos if len(eos) > 1 else eos[0]},
              open(os.path.join(d, "generation_config.json"), "w"), indent=2)
    bundled = os.path.join(HERE, "..", "..", "models", "kjv-draft")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(bundled, f), os.path.join(d, f))
    refs = []
    for p in PROMPTS:
        ids = [1] + sp.encode(p)
        gen, gap = greedy_until(model, ids, MAX_NEW, eos)
        refs.append({"prompt": p, "prompt_ids": ids, "greedy_ids": gen,
                     "greedy_text": sp.decode([t for t in gen if t > 2]), "min_top2_gap": round(gap, 4)})
    ref = {"doc": REFERENCE_DOC, "kv_layout": "optimum", "variant": note, "graph": graph_name, "eos_token_ids": eos,
           "seed": 20261130, "max_new": MAX_NEW, "prompts": refs}
    json.dump(ref, open(os.path.join(d, "reference.json"), "w"), indent=2)
    for f in sorted(os.listdir(d)):
        print("%-22s %-26s %9d" % (name, f, os.path.getsize(os.path.join(d, f))))
    return refs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="the directory to write the three fixture directories into")
    ap.add_argument("--work", default=os.path.join(HERE, "work", "optimum-tiny"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    model = build_model()
    sp = spm.SentencePieceProcessor(model_file=os.path.join(HERE, "kjv4096.model"))

    gens = [greedy_with_gap(model, [1] + sp.encode(p), MAX_NEW)[0] for p in PROMPTS]
    eos = [EOS] + choose_eos(gens)

    nopos = export(model, os.path.join(a.work, "nopos.onnx"), position_ids=False)
    assert "position_ids" not in [i.name for i in nopos.graph.input]
    write_dir(a.out, "optimum-tiny-nopos", model, "model.onnx", nopos, eos,
              "fp32, no position_ids input; several EOS ids in generation_config.json", sp)

    full = export(model, os.path.join(a.work, "with_past.onnx"))
    write_dir(a.out, "optimum-tiny-fp16", model, "model.onnx", to_fp16(full), [EOS],
              "fp16 weights, past/present and logits (norms, rotary and softmax in fp32)", sp, "float16")

    first = export(model, os.path.join(a.work, "without_past.onnx"), past=False)
    write_dir(a.out, "optimum-tiny-merged", model, "decoder_model_merged.onnx", merge(full, first), [EOS],
              "Optimum's merged decoder: If(use_cache_branch) with-past / without-past", sp)


if __name__ == "__main__":
    main()
