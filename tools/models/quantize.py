#!/usr/bin/python3
"""Dynamic int8 quantisation of an fp32 ONNX decoder, written with the onnx package only.

For every MatMul whose B input is a constant 2-D weight initializer W [K, N]:
  x -> per-token quantisation (one per distinct x, shared):
       xs = max(|x|) over the last axis / 127  (one scale per token), xq = uint8(round(x / xs) + 128)
  W -> Wq uint8 [K, N], per output column scale ws[N] and zero point wzp[N] (asymmetric)
  y = Cast<float>(MatMulInteger(xq, Wq, 128, wzp)) * xs * ws

Per-token activation scales make every token's result independent of the other tokens in the same
call, so feeding k tokens at once (speculative verification, prefill) gives the same logits as
feeding them one by one. ONNX's DynamicQuantizeLinear uses one scale for the whole tensor, which
makes a token's logits depend on its neighbours and breaks "assisted greedy == plain greedy";
it is kept as --per-tensor for comparison.
uint8 weights (not int8) avoid the u8s8 int16 saturation of AVX2 kernels without VNNI.
Optionally (--embedding) the embedding Gather table (indexed by input_ids) is stored as uint8 per row with scale/zero
point, dequantised after the Gather. Everything else stays float32.

  quantize.py in.onnx out.onnx [--skip-lm-head] [--embedding]
"""
import argparse
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto


def quant_cols(W):
    """per-column (axis 1) asymmetric uint8"""
    lo = np.minimum(W.min(axis=0), 0.0)
    hi = np.maximum(W.max(axis=0), 0.0)
    scale = (hi - lo) / 255.0
    scale[scale == 0] = 1.0
    zp = np.clip(np.round(-lo / scale), 0, 255)
    q = np.clip(np.round(W / scale) + zp, 0, 255).astype(np.uint8)
    return q, scale.astype(np.float32), zp.astype(np.uint8)


def per_token_quant(x, nodes, inits, zp128):
    """x [..., K] float -> (xq uint8, xs [..., 1]) with one symmetric scale per token, zero point 128."""
    b = x.replace("/", "_").strip("_")
    nodes += [
        helper.make_node("Abs", [x], [b + "_abs"], name=b + "_Abs"),
        helper.make_node("ReduceMax", [b + "_abs"], [b + "_amax"], axes=[-1], keepdims=1, name=b + "_ReduceMax"),
        helper.make_node("Max", [b + "_amax", "tq_eps"], [b + "_amaxe"], name=b + "_MaxEps"),
        helper.make_node("Div", [b + "_amaxe", "tq_127"], [b + "_xs"], name=b + "_Scale"),
        helper.make_node("Div", [x, b + "_xs"], [b + "_xd"], name=b + "_DivX"),
        helper.make_node("Round", [b + "_xd"], [b + "_xr"], name=b + "_Round"),
        helper.make_node("Add", [b + "_xr", "tq_128f"], [b + "_xo"], name=b + "_Offset"),
        helper.make_node("Clip", [b + "_xo", "tq_0f", "tq_255f"], [b + "_xc"], name=b + "_Clip"),
        helper.make_node("Cast", [b + "_xc"], [b + "_xq"], to=TensorProto.UINT8, name=b + "_CastU8"),
    ]
    return b + "_xq", b + "_xs", zp128


def quantize(src, dst, skip_lm_head=False, embedding=False, per_tensor=False):
    m = onnx.load(src)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    uses = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    out_names = {o.name for o in g.output}
    new_nodes, new_inits, dq = [], [], {}
    drop = set()
    nq = 0
    consts = [numpy_helper.from_array(np.array(1e-8, np.float32), "tq_eps"),
              numpy_helper.from_array(np.array(127.0, np.float32), "tq_127"),
              numpy_helper.from_array(np.array(128.0, np.float32), "tq_128f"),
              numpy_helper.from_array(np.array(0.0, np.float32), "tq_0f"),
              numpy_helper.from_array(np.array(255.0, np.float32), "tq_255f"),
              numpy_helper.from_array(np.array(128, np.uint8), "tq_zp128")]
    for n in g.node:
        w = n.input[1] if n.op_type == "MatMul" and len(n.input) == 2 else None
        is_lm_head = n.output[0] in out_names or n.output[0] == "logits"
        if w in inits and len(inits[w].dims) == 2 and not (skip_lm_head and is_lm_head):
            W = numpy_helper.to_array(inits[w]).astype(np.float32)
            q, s, z = quant_cols(W)
            base = n.output[0].replace("/", "_").strip("_")
            x = n.input[0]
            if x not in dq:
                if per_tensor:
                    xq, xs, xz = x + "_q", x + "_scale", x + "_zp"
                    new_nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xz], name=x + "_DynQuant"))
                    dq[x] = (xq, xs, xz)
                else:
                    dq[x] = per_token_quant(x, new_nodes, new_inits, "tq_zp128")
            xq, xs, xz = dq[x]
            new_inits += [numpy_helper.from_array(q, base + "_Wq"), numpy_helper.from_array(s, base + "_Wscale"),
                          numpy_helper.from_array(z, base + "_Wzp")]
            new_nodes.append(helper.make_node("MatMulInteger", [xq, base + "_Wq", xz, base + "_Wzp"], [base + "_i32"],
                                              name=base + "_MatMulInteger"))
            new_nodes.append(helper.make_node("Cast", [base + "_i32"], [base + "_f32"], to=TensorProto.FLOAT,
                                              name=base + "_Cast"))
            if per_tensor:
                new_nodes.append(helper.make_node("Mul", [xs, base + "_Wscale"], [base + "_scale"], name=base + "_ScaleMul"))
                new_nodes.append(helper.make_node("Mul", [base + "_f32", base + "_scale"], [n.output[0]], name=base + "_Mul"))
            else:
                new_nodes.append(helper.make_node("Mul", [base + "_f32", xs], [base + "_fx"], name=base + "_MulX"))
                new_nodes.append(helper.make_node("Mul", [base + "_fx", base + "_Wscale"], [n.output[0]], name=base + "_Mul"))
            uses[w] -= 1
            if uses[w] == 0:
                drop.add(w)
            nq += 1
        elif embedding and n.op_type == "Gather" and n.input[1] == "input_ids" and n.input[0] in inits \
                and len(inits[n.input[0]].dims) == 2 and inits[n.input[0]].dims[0] > 1000:
            # only the token embedding (indexed by input_ids): the slots export's rotary cos/sin tables are
            # Gathers too (by position_ids, 1024 rows at context 1024) and must stay exact float32
            E = numpy_helper.to_array(inits[n.input[0]]).astype(np.float32)  # [V, D] per-row quantisation
            q, s, z = quant_cols(E.T)
            base = n.output[0].replace("/", "_").strip("_")
            new_inits += [numpy_helper.from_array(q.T.copy(), base + "_Eq"),
                          numpy_helper.from_array(s.reshape(-1, 1), base + "_Escale"),
                          numpy_helper.from_array(z.reshape(-1, 1).astype(np.float32), base + "_Ezp")]
            ids = n.input[1]
            new_nodes += [
                helper.make_node("Gather", [base + "_Eq", ids], [base + "_q"], name=base + "_GatherQ"),
                helper.make_node("Gather", [base + "_Escale", ids], [base + "_s"], name=base + "_GatherS"),
                helper.make_node("Gather", [base + "_Ezp", ids], [base + "_z"], name=base + "_GatherZ"),
                helper.make_node("Cast", [base + "_q"], [base + "_qf"], to=TensorProto.FLOAT, name=base + "_CastE"),
                helper.make_node("Sub", [base + "_qf", base + "_z"], [base + "_c"], name=base + "_SubE"),
                helper.make_node("Mul", [base + "_c", base + "_s"], [n.output[0]], name=base + "_MulE")]
            uses[n.input[0]] -= 1
            if uses[n.input[0]] == 0:
                drop.add(n.input[0])
        else:
            new_nodes.append(n)
    keep = [i for i in g.initializer if i.name not in drop]
    del g.node[:]
    g.node.extend(new_nodes)
    del g.initializer[:]
    g.initializer.extend(keep + new_inits + ([] if per_tensor else consts))
    m.producer_name = "tandem-quantize"
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    print("quantised %d MatMuls (%s activations)%s -> %s" % (nq, "per-tensor" if per_tensor else "per-token",
                                                             " + embedding" if embedding else "", dst))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("src"); ap.add_argument("dst")
    ap.add_argument("--skip-lm-head", action="store_true")
    ap.add_argument("--embedding", action="store_true")
    ap.add_argument("--per-tensor", action="store_true", help="DynamicQuantizeLinear (not batch-invariant)")
    a = ap.parse_args()
    quantize(a.src, a.dst, a.skip_lm_head, a.embedding, a.per_tensor)
